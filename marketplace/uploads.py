"""Placeholder until the upload handler lands (catalogue issue, in progress)."""

from django.core.files.uploadhandler import TemporaryFileUploadHandler


class HashingUploadHandler(TemporaryFileUploadHandler):
    pass
