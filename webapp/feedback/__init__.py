"""Reviewer feedback: one validated record per reviewed case, kept in SQLite or PostgreSQL.

Clinician feedback sessions rate and correct the model; what they say must never be lost and must
be usable as training data later, so every record is validated whole before anything is written and
:meth:`store.FeedbackStore.add` returns only after the transaction has committed (that return is the
acknowledgement the web page shows).

- :mod:`.record`: :class:`~.record.FeedbackRecord`, validated on construction, and the errors;
- :mod:`.store`: :class:`~.store.FeedbackStore` (open, add, count, iter_records);
- :mod:`.migrations`: the versioned schema; :mod:`.backends`: SQLite and PostgreSQL;
- :mod:`.export`: accepted cases -> a training manifest, and the agreement report; :mod:`.cli`: the command.

Usage::

    store = FeedbackStore.open(url, store_images=False)  # a path, sqlite:///path or postgresql://...
    record = FeedbackRecord.from_prediction(prediction, prompt, pixels, reviewer="dr_a",
                                            model_name=..., model_version=..., agree=False,
                                            corrected_class="malignant", outline_rating=4,
                                            accepted=True, comment="")
    feedback_id = store.add(record)        # raises FeedbackError (invalid) or StoreUnavailable
    store.count(); store.iter_records(); store.close()

Privacy: the image pixels are stored only when the operator enables ``store_images``, and then as a
PNG of the 8-bit grayscale pixels, never the uploaded file: no DICOM header (patient data) is ever
kept. Without images a record keeps the pixels' SHA-256 and the image size only.
"""
