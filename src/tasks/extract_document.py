"""`extract-document`: the seed's data-extraction agent, with a fallback and a human in the loop.

1. `primary-extract` asks the extraction service for the document's fields. It retries an
   outage, but a scanned image is refused for good (`UnsupportedDocument` is listed as
   non-retryable), and `ctx.step` raises `StepFailedError` at the call site.
2. On that error the agent falls back to its own pipeline: `ocr` turns the document into
   text, `llm-extract` asks a language model for the fields. Each is a checkpoint with its
   own retry policy: when the OCR service times out, only the OCR step runs again, and a
   retried LLM call gets the OCR text from the log.
3. Below `confidence_threshold` a person checks the result: `ctx.wait_for_callback("review")`
   makes a single-use callback token and hands it to the review queue in a step
   (`submit:review`). The run then waits, holding no Lambda, until the reviewer's tool
   calls `POST /callbacks/{token}` with `{"data": {"approved": true, "reviewer": "ana",
   "fields": {...}}}` (corrected fields are optional) or 24 hours pass.
4. `save-extraction` writes the fields to the documents table.

A rejection marks the document rejected and fails the run (`NonRetryableError`: a retry
cannot change a person's answer). No answer within 24 hours (`WaitTimeoutError`), or a review
tool that answers with `{"error": ...}` (`CallbackFailedError`), leaves the document for
manual handling and completes the run with status "needs_manual_handling".
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from durable import Context, NonRetryableError, RetryPolicy, StepFailedError, WaitTimeoutError, task
from durable.errors import CallbackFailedError
from tasks.fakes import UnsupportedDocument, documents, extractor, llm, ocr, reviews

REVIEW_TIMEOUT = timedelta(hours=24)
LLM_MODEL = "fake-gpt-4"


class DocumentIn(BaseModel):
    """The payload: which document, and how sure the agent must be to skip a person."""

    document_url: str = Field(min_length=1)
    confidence_threshold: float = Field(default=0.8, ge=0, le=1)


class Extraction(BaseModel):
    """Fields read from a document, how sure the reader is, and which reader it was."""

    fields: dict[str, str]
    confidence: float
    source: Literal["primary", "fallback"]


class Review(BaseModel):
    """The data a reviewer sends to the callback."""

    approved: bool
    reviewer: str = "unknown"
    comment: str = ""
    fields: dict[str, str] | None = None  # corrections; None keeps the extracted fields


class DocumentOut(BaseModel):
    """The result: where the document now stands and what was saved."""

    document_url: str
    status: Literal["processed", "needs_manual_handling"]
    source: Literal["primary", "fallback"]
    confidence: float
    fields: dict[str, str] = Field(default_factory=dict)
    reviewed_by: str | None = None


def primary_extract(document_url: str) -> Extraction:
    found = extractor.extract(document_url)
    return Extraction(fields=found["fields"], confidence=found["confidence"], source="primary")


def read_text(document_url: str) -> str:
    text: str = ocr.process(document_url)["text"]
    return text


def llm_extract(text: str) -> Extraction:
    prompt = "Extract the invoice fields as JSON from this text:\n" + text
    completion = llm.generate(model=LLM_MODEL, prompt=prompt)
    answer: dict[str, Any] = json.loads(completion["text"])
    return Extraction(fields=answer["fields"], confidence=answer["confidence"], source="fallback")


@task(
    id="extract-document",
    retry=RetryPolicy(max_attempts=3, factor=2.0, min_delay=timedelta(seconds=1)),
)
def extract_document(ctx: Context, payload: DocumentIn) -> DocumentOut:
    url = payload.document_url
    try:
        extraction = ctx.step(
            "primary-extract",
            primary_extract,
            url,
            retry=RetryPolicy(max_attempts=2, non_retryable=(UnsupportedDocument,)),
        )
    except StepFailedError as error:
        ctx.logger.warning("primary extractor failed, trying OCR + LLM", error=error.message)
        text = ctx.step("ocr", read_text, url, retry=RetryPolicy(max_attempts=3))
        extraction = ctx.step("llm-extract", llm_extract, text, retry=RetryPolicy(max_attempts=3))

    fields, reviewer = extraction.fields, None
    if extraction.confidence < payload.confidence_threshold:
        found = extraction.model_dump()
        try:
            data = ctx.wait_for_callback(
                "review",
                submit=lambda token: reviews.submit(token, url, found),
                timeout=REVIEW_TIMEOUT,
            )
        except (WaitTimeoutError, CallbackFailedError) as error:
            reason = (
                "no review within 24 hours" if isinstance(error, WaitTimeoutError) else str(error)
            )
            ctx.step("mark-manual", documents.mark_manual, url, reason)
            return DocumentOut(
                document_url=url,
                status="needs_manual_handling",
                source=extraction.source,
                confidence=extraction.confidence,
            )
        try:
            review = Review.model_validate(data)
        except ValidationError as exc:
            raise NonRetryableError(f"the review is malformed: {exc}") from None
        if not review.approved:
            ctx.step("mark-rejected", documents.mark_rejected, url, review.reviewer, review.comment)
            raise NonRetryableError(f"{review.reviewer} rejected the extraction: {review.comment}")
        fields, reviewer = review.fields or fields, review.reviewer

    ctx.step("save-extraction", documents.save, url, fields, extraction.source, reviewer)
    return DocumentOut(
        document_url=url,
        status="processed",
        source=extraction.source,
        confidence=extraction.confidence,
        fields=fields,
        reviewed_by=reviewer,
    )
