"""Creating recordings from uploaded files (being built: catalogue issue).

Interface the rest of the code relies on:

    recording_create(*, performer, by, file, original_filename, title, language="",
                     provenance=None, request=None) -> Recording

``file`` is a Django File (an UploadedFile from the streaming upload handler,
or a File opened on a local path by the importer). The type is read from the
file's bytes; a file whose bytes are not an allowed audio/video type, or that
cannot be decoded, raises core.errors.ValidationError with a stable code
(``unsupported_media_type``, ``corrupt_media``, ``empty_file``,
``file_too_large``). The same bytes uploaded again by the same performer raise
core.errors.Conflict(code="duplicate_recording", details={"recording": uid}).
"""
