"""The fault-injection suite: crashes at every AWS call, duplicate and late delivery,
throttling above botocore's retries, races, and hostile or malformed API input."""
