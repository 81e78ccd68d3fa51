"""`durable dev`: the stack on one machine (moto, a local API Gateway, SQS poller, containers).

Never imported on the Lambda path: handlers and the library proper do not depend on it.
"""
