"""Download benchmark: a 1 GB licensed file streamed through the download
view, against reading the same file straight from disk, in the same run.

    .venv/bin/python bench/download.py [--size-mb 1024] [--repeat 3] [--random]

Everything lives in a temporary directory: a scratch SQLite database, the
media root and the file. The script buys a license the real way (checkout
and fulfilment through the simulated gateway), stores a SIZE MB file as the
licensed recording's original through Django's storage API (local disk),
then, alternately and REPEAT times each:

* **view**: makes a signed link (``licensing.downloads.download_links_create``)
  and GETs it with Django's test client in process — URL routing,
  middleware, the link and license checks, ``core.http.ranged_file_response``
  and the download log — consuming ``response.streaming_content``;
* **disk**: reads the file with plain Python in the same chunk size.

It prints both throughputs (best of REPEAT, and the median) in MB/s and the
ratio view/disk. The first pass of each warms the page cache, so both read
from memory and the comparison measures the overhead of the view itself.
The file is sparse by default (fast to create); ``--random`` fills it with
incompressible bytes instead. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1_000_000
CHUNK = 256 * 1024


def _configure(workdir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "RESIDUALS_ENV": "development",
            "DEBUG": "1",  # the simulated gateway runs only with DEBUG on
            "STRIPE_SECRET_KEY": "",
            "RESIDUALS_VAR_DIR": str(workdir / "var"),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(workdir / "media"),
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "LOG_LEVEL": "WARNING",
            "EMAIL_URL": "dummymail://",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _licensed_recording():
    """A performer's listing, bought by an organization through checkout and
    the same fulfilment the webhook runs."""
    from licensing.services import checkout_start
    from royalties.sales import checkout_completed
    from tests.factories import make_organization, make_performer, make_user
    from tests.factories_marketplace import make_published_listing, make_sellable_recording

    staff = make_user(email="staff@bench.example", is_staff=True)
    performer = make_performer(email="performer@bench.example", legal_name="Bea Bench")
    recording = make_sellable_recording(performer, title="Long take")
    listing = make_published_listing(performer, [recording], reviewer=staff, title="Long take")
    buyer = make_user(email="buyer@bench.example")
    organization = make_organization(owner=buyer, name="Bench AI")
    started = checkout_start(
        organization=organization,
        user=buyer,
        listings=[listing],
        success_url="http://127.0.0.1:8000/{order}",
        cancel_url="http://127.0.0.1:8000/{order}",
    )
    checkout_completed(
        session_id=started.order.checkout_session_id,
        payment_status="paid",
        payment_intent="pi_sim_bench",
    )
    license = started.order.lines.get().license
    return license, recording, buyer


def _make_big_file(path: Path, size: int, random_bytes: bool) -> None:
    with open(path, "wb") as handle:
        if not random_bytes:
            handle.truncate(size)  # sparse: reads as zeros
            return
        block = os.urandom(16 * 1024 * 1024)
        written = 0
        while written < size:
            part = block[: min(len(block), size - written)]
            handle.write(part)
            written += len(part)


def _store(recording, source: Path, size: int) -> str:
    """Store the file as the recording's original, through the storage API."""
    from django.core.files import File

    from marketplace.models import Recording

    storage = recording.file.storage
    with open(source, "rb") as handle:
        name = storage.save(f"bench/{recording.uid}.wav", File(handle))
    Recording.objects.filter(pk=recording.pk).update(file=name, size_bytes=size)
    recording.refresh_from_db()
    return name


def _time_view(client, license, recording, user) -> tuple[float, int]:
    from accounts.selectors import principal_for
    from licensing.downloads import download_links_create

    (link,) = download_links_create(
        license=license, principal=principal_for(user, None), recording_uids=[recording.uid]
    )
    started = time.perf_counter()
    response = client.get(urlsplit(link.url).path)
    assert response.status_code == 200, response.status_code
    received = 0
    for chunk in response.streaming_content:
        received += len(chunk)
    response.close()
    return time.perf_counter() - started, received


def _time_disk(path: str) -> tuple[float, int]:
    started = time.perf_counter()
    received = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            received += len(chunk)
    return time.perf_counter() - started, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=3, help="measured passes of each")
    parser.add_argument("--random", action="store_true", help="random bytes, not a sparse file")
    args = parser.parse_args()
    size = args.size_mb * MB

    with tempfile.TemporaryDirectory(prefix="residuals-bench-download-") as tmp:
        workdir = Path(tmp)
        print(f"Working in {workdir}")
        _configure(workdir)
        from django.test import Client

        license, recording, buyer = _licensed_recording()
        print(f"License {license.uid} for {recording.uid}; making a {args.size_mb} MB file…")
        source = workdir / "source.bin"
        _make_big_file(source, size, args.random)
        name = _store(recording, source, size)
        source.unlink()
        path = recording.file.storage.path(name)
        client = Client()

        # Warm-up: fill the page cache and check both paths deliver every byte.
        assert _time_disk(path)[1] == size
        assert _time_view(client, license, recording, buyer)[1] == size

        view_times, disk_times = [], []
        for n in range(1, args.repeat + 1):
            seconds, _ = _time_view(client, license, recording, buyer)
            view_times.append(seconds)
            disk_seconds, _ = _time_disk(path)
            disk_times.append(disk_seconds)
            print(
                f"  pass {n}: view {size / MB / seconds:8.1f} MB/s   "
                f"disk {size / MB / disk_seconds:8.1f} MB/s"
            )

        def rate(seconds: float) -> float:
            return size / MB / seconds

        view_best, disk_best = rate(min(view_times)), rate(min(disk_times))
        view_median = rate(statistics.median(view_times))
        disk_median = rate(statistics.median(disk_times))
        print()
        print(f"File: {args.size_mb} MB ({'random' if args.random else 'sparse'}), chunk 256 KiB")
        print(f"Download view (signed link, test client): best {view_best:8.1f} MB/s, "
              f"median {view_median:8.1f} MB/s")  # fmt: skip
        print(f"Plain read from disk:                    best {disk_best:8.1f} MB/s, "
              f"median {disk_median:8.1f} MB/s")  # fmt: skip
        print(f"Ratio view/disk: {view_best / disk_best:.2f} (best), "
              f"{view_median / disk_median:.2f} (median)")  # fmt: skip
        from licensing.models import DownloadLog

        logged = DownloadLog.objects.filter(license=license, completed=True).count()
        print(f"Downloads logged: {logged} complete, {size:,} bytes each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
