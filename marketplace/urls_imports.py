from django.urls import path

from marketplace import views_imports

urlpatterns = [
    path(
        "recordings/imports/new/", views_imports.recording_import_new, name="recording_import_new"
    ),
    path(
        "recordings/imports/manifest-template.csv",
        views_imports.recording_import_template,
        name="recording_import_template",
    ),
    path(
        "recordings/imports/<int:batch_id>/",
        views_imports.recording_import_detail,
        name="recording_import_detail",
    ),
    path(
        "recordings/imports/<int:batch_id>/files/",
        views_imports.recording_import_file,
        name="recording_import_file",
    ),
]
