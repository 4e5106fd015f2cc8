"""Usage ingest benchmark: N events posted over HTTP to gunicorn, against a
plain PostgreSQL COPY of the same rows, in the same run.

    .venv/bin/python bench/ingest.py [--events 1000000] [--clients 4] [--licenses 24]

The database (default ``residuals_bench_ingest`` on the local server; set
``DATABASE_URL`` to use another, whose name must contain "bench") is dropped,
created and migrated at the start and dropped again at the end (``--keep``
leaves it, to look at). Media, the development secret key and the broker's
folder live in a temporary directory.

1. **Setup**, through the project's own services: a performer lists
   ``--licenses`` recordings, a buyer organization buys them all in one
   checkout — ``licensing.services.checkout_start`` and the fulfilment the
   Stripe webhook runs (``royalties.sales.checkout_completed``), with the
   *simulated* payment gateway, which is why this process runs with
   ``DEBUG=1`` — and its owner creates an organization API key
   (``accounts.services.api_key_create``). One more license permits model
   training only, so some events are refused as ``metric_not_permitted``.
2. **Ingest**: starts ``gunicorn config.wsgi --workers 2`` (``DEBUG=0``,
   persistent database connections) on a free loopback port, and
   ``--clients`` processes POST the events to ``/api/v1/usage-events/`` in
   batches of 1,000 with ``Authorization: Bearer <key>``. Each client
   encodes all its request bodies *before* the clock starts, so JSON
   encoding on the client side is not measured. The mix: every metric,
   revenue events with amounts, about 0.5% re-sent events (``duplicate``)
   and about 0.3% bad ones (unknown license, metric not permitted, time in
   the future). A progress bar follows the answers; the rate is events sent
   per second of wall time, first request to last answer.
3. **Checks** that the table holds exactly the events the answers called
   ``accepted``.
4. **COPY**: the same rows (every column but the id), read back with
   ``COPY … TO STDOUT``, are written with one ``COPY … FROM STDIN`` (psycopg)
   into a table made ``LIKE royalties_usageevent INCLUDING ALL`` (the same
   columns, defaults, checks and indexes, no foreign keys); the rate of that
   write is printed beside the HTTP rate, with the target (≥ 10,000 events/s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/residuals_bench_ingest"
BATCH = 1000
TARGET = 10_000  # events per second
SEED = 2026
ENDPOINT = "/api/v1/usage-events/"
# Every metric the broad licenses permit, weighted roughly as a buyer would report.
METRIC_WEIGHTS = {
    "inference_calls": 50,
    "downstream_revenue": 20,
    "evaluation_run": 10,
    "training_run": 10,
    "fine_tune_run": 5,
    "deployment": 5,
}
BROAD_USES = ("model_training", "evaluation", "fine_tuning", "commercial_deployment")
MODELS = ["empathy-7b", "empathy-70b", "tone-small", "voice-clone-2"]


# --- Environment and database -----------------------------------------------------------


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit("DATABASE_URL must point at PostgreSQL.")
    if "bench" not in parsed.path:
        sys.exit(f"Refusing to use {parsed.path.lstrip('/')!r}: its name must contain 'bench'.")
    return url


def conninfo(url: str, dbname: str | None = None) -> str:
    parsed = urlparse(url)
    parts = {
        "host": parsed.hostname or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": parsed.username or "postgres",
        "dbname": dbname or parsed.path.lstrip("/"),
    }
    if parsed.password:
        parts["password"] = parsed.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


def recreate_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"Created database {name}.")


def drop_database(url: str) -> None:
    import psycopg

    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()
    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"Dropped database {name}.")


def configure(workdir: Path, url: str) -> dict[str, str]:
    """Set up Django in this process (DEBUG on: the simulated gateway sells
    the licenses) and return the environment the web server runs with."""
    common = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RESIDUALS_ENV": "development",
        "DATABASE_URL": url,
        "RESIDUALS_VAR_DIR": str(workdir / "var"),
        "MEDIA_ROOT": str(workdir / "media"),
        "STRIPE_SECRET_KEY": "",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        # Persistent connections, as in production (README).
        "CONN_MAX_AGE": "60",
    }
    os.environ.update({**common, "DEBUG": "1", "CELERY_TASK_ALWAYS_EAGER": "1"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {**os.environ, **common, "DEBUG": "0"}


# --- The buyer and its licenses -----------------------------------------------------------


def buyer_world(n_licenses: int) -> dict:
    """A performer's listings bought by one organization in one checkout
    (simulated gateway, the webhook's fulfilment), and an organization API key.
    The last license permits model training only."""
    from accounts.services import api_key_create
    from licensing.models import License
    from licensing.services import checkout_start
    from royalties.sales import checkout_completed
    from tests.factories import make_organization, make_performer, make_user
    from tests.factories_marketplace import make_published_listing, make_sellable_recording

    staff = make_user(email="staff@bench.example", is_staff=True)
    performer = make_performer(email="performer@bench.example", legal_name="Bea Bench")
    listings = []
    for n in range(n_licenses + 1):
        narrow = n == n_licenses
        uses = ("model_training",) if narrow else BROAD_USES
        recording = make_sellable_recording(performer, title=f"Take {n + 1}", uses=uses)
        listings.append(
            make_published_listing(
                performer,
                [recording],
                reviewer=staff,
                title=f"Bench take {n + 1}",
                price_minor=10_000,
                uses=uses,
                revenue_share_bps=2000,
                revenue_threshold_minor=1_000_000,
                per_unit_rates={
                    "inference_calls": {"amount_minor": 1, "per": 1000},
                    "training_run": {"amount_minor": 5000, "per": 1},
                },
            )
        )
    owner = make_user(email="owner@bench.example")
    organization = make_organization(owner=owner, name="Bench AI")
    started = checkout_start(
        organization=organization,
        user=owner,
        listings=listings,
        success_url="http://127.0.0.1:8000/{order}",
        cancel_url="http://127.0.0.1:8000/{order}",
    )
    checkout_completed(
        session_id=started.order.checkout_session_id,
        payment_status="paid",
        payment_intent="pi_sim_bench",
    )
    licenses = list(License.objects.filter(order_line__order=started.order).order_by("id"))
    assert len(licenses) == n_licenses + 1, len(licenses)
    assert all(lic.status == License.Status.ACTIVE for lic in licenses)
    key = api_key_create(name="bench pipeline", created_by=owner, organization=organization)
    return {
        "organization_id": organization.pk,
        "key": key.secret,
        "broad": [lic.uid for lic in licenses[:-1]],
        "narrow": licenses[-1].uid,
        "since": max(lic.starts_at for lic in licenses),
    }


# --- The events -----------------------------------------------------------------------------


def batch_events(
    number: int, size: int, world: dict, previous: list[dict] | None
) -> tuple[list[dict], Counter, list[dict]]:
    """One batch: mostly good events, a few re-sent from an earlier batch
    (``previous``: good events already stored; they come back ``duplicate``)
    and a few bad ones. Returns the events, what the answer should say about
    them (by status and by rejection code), and the good new ones."""
    rng = random.Random(SEED * 1_000_003 + number)
    base = world["since"] + timedelta(seconds=1)
    expected: Counter = Counter()
    events, good = [], []
    for i in range(size):
        if previous and rng.random() < 0.005:
            events.append(previous[rng.randrange(len(previous))])
            expected["duplicate"] += 1
            continue
        metric = rng.choices(list(METRIC_WEIGHTS), weights=list(METRIC_WEIGHTS.values()))[0]
        event = {
            "event_id": f"ev-{number:06d}-{i:04d}",
            "license": rng.choice(world["broad"]),
            "metric": metric,
            "occurred_at": (base + timedelta(seconds=rng.randrange(60))).isoformat(),
            "model": rng.choice(MODELS),
        }
        if metric == "downstream_revenue":
            event["amount_minor"] = rng.randrange(100, 500_000)
            event["currency"] = "USD"
        elif metric == "inference_calls":
            event["quantity"] = rng.randrange(1, 100_000)
        else:
            event["quantity"] = 1
        roll = rng.random()
        if roll < 0.001:
            event["license"] = "LIC-NOSUCHLICENSE"
            expected["license_not_found"] += 1
        elif roll < 0.002:
            event["license"], event["metric"], event["quantity"] = (
                world["narrow"],
                "inference_calls",
                10,
            )
            event.pop("amount_minor", None), event.pop("currency", None)
            expected["metric_not_permitted"] += 1
        elif roll < 0.003:
            event["occurred_at"] = (datetime.now(base.tzinfo) + timedelta(days=2)).isoformat()
            expected["occurred_in_future"] += 1
        else:
            expected["accepted"] += 1
            good.append(event)
        events.append(event)
    return events, expected, good


def plan(n_events: int) -> list[tuple[int, int]]:
    """(batch number, size) for every batch."""
    return [(n, min(BATCH, n_events - start)) for n, start in enumerate(range(0, n_events, BATCH))]


def client_main(index: int, clients: int, n_events: int, world: dict, port: int, ready, go, out):
    """One client process: encode its batches, wait for the start, post
    them one after another on a keep-alive connection, report each answer."""
    mine = [b for b in plan(n_events) if b[0] % clients == index]
    bodies, expectations = [], []
    previous = None
    for number, size in mine:
        events, expected, good = batch_events(number, size, world, previous)
        previous = good[:50]
        bodies.append(json.dumps(events, separators=(",", ":")).encode())
        expectations.append(expected)
    headers = {
        "Authorization": f"Bearer {world['key']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    ready.put(index)
    go.wait()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for (number, size), body, expected in zip(mine, bodies, expectations, strict=True):
        conn.request("POST", ENDPOINT, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status not in (200, 207):
            out.put(("error", number, response.status, data[:500].decode(errors="replace")))
            return
        answer = json.loads(data)
        seen = Counter(
            accepted=answer["accepted"], duplicate=answer["duplicates"], rejected=answer["rejected"]
        )
        if answer["rejected"]:
            for result in answer["results"]:
                if result["status"] == "rejected":
                    seen[result["error"]["code"]] += 1
        out.put(("batch", number, size, seen, expected))
    conn.close()
    out.put(("done", index))


# --- The web server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, workers: int = 2) -> subprocess.Popen:
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "config.wsgi",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    # A fixed command line: the project's own gunicorn, no outside input.
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return process
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(process)
    sys.exit("gunicorn did not answer within 60 s")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # the master stops its workers gracefully
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Measuring ----------------------------------------------------------------------------


def post_events(n_events: int, clients: int, world: dict, port: int) -> tuple[float, Counter]:
    from tqdm import tqdm

    context = multiprocessing.get_context("spawn")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(
            target=client_main, args=(i, clients, n_events, world, port, ready, go, out)
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    print(f"{clients} clients are encoding {len(plan(n_events)):,} request bodies …")
    for _ in processes:
        ready.get()
    seen: Counter = Counter()
    expected: Counter = Counter()
    progress = tqdm(total=n_events, unit="ev", unit_scale=True, desc="Posting", smoothing=0.1)
    started = time.perf_counter()
    go.set()
    done = 0
    try:
        while done < clients:
            message = out.get()
            if message[0] == "done":
                done += 1
            elif message[0] == "error":
                raise SystemExit(f"Batch {message[1]}: HTTP {message[2]}: {message[3]}")
            else:
                _, _, size, batch_seen, batch_expected = message
                seen.update(batch_seen)
                expected.update(batch_expected)
                progress.update(size)
        elapsed = time.perf_counter() - started
    finally:
        progress.close()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    rejected_codes = {k: v for k, v in seen.items() if k not in {"accepted", "duplicate"}}
    expected_codes = {k: v for k, v in expected.items() if k not in {"accepted", "duplicate"}}
    if seen["accepted"] != expected["accepted"] or seen["duplicate"] != expected["duplicate"]:
        raise SystemExit(f"Unexpected answers: got {dict(seen)}, expected {dict(expected)}")
    if {k: v for k, v in rejected_codes.items() if k != "rejected"} != expected_codes:
        raise SystemExit(f"Unexpected rejections: got {rejected_codes}, expected {expected_codes}")
    return elapsed, seen


COLUMNS = (
    "organization_id, license_id, event_id, metric, quantity, amount_minor, currency, "
    "occurred_at, model, note, adjusts_id, body_sha256, api_key_prefix, received_at"
)


def copy_baseline(url: str) -> tuple[int, float]:
    """COPY the stored rows into a table shaped like royalties_usageevent."""
    import psycopg

    with psycopg.connect(conninfo(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_usageevent_copy")
        conn.execute("CREATE TABLE bench_usageevent_copy (LIKE royalties_usageevent INCLUDING ALL)")
        conn.commit()
        chunks = []
        with conn.cursor().copy(
            f"COPY (SELECT {COLUMNS} FROM royalties_usageevent ORDER BY id) TO STDOUT"  # noqa: S608
        ) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
        rows = sum(chunk.count(b"\n") for chunk in chunks)
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY bench_usageevent_copy ({COLUMNS}) FROM STDIN") as copy:
            for chunk in chunks:
                copy.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - started
        copied = conn.execute("SELECT count(*) FROM bench_usageevent_copy").fetchone()[0]
        assert copied == rows, (copied, rows)
        conn.execute("DROP TABLE bench_usageevent_copy")
        conn.commit()
    return rows, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to post")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--licenses", type=int, default=24, help="licenses the events use")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()

    url = database_url()
    recreate_database(url)
    gunicorn = None
    try:
        with tempfile.TemporaryDirectory(prefix="residuals-bench-ingest-") as tmp:
            server_env = configure(Path(tmp), url)
            started = time.perf_counter()
            world = buyer_world(args.licenses)
            print(f"Sold {args.licenses + 1} licenses to organization {world['organization_id']} "
                  f"in {time.perf_counter() - started:.0f} s; API key created.")  # fmt: skip
            from django.db import connections

            connections.close_all()
            port = free_port()
            gunicorn = start_gunicorn(server_env, port, args.workers)
            print(f"gunicorn config.wsgi --workers {args.workers} on 127.0.0.1:{port} (DEBUG=0)")
            elapsed, seen = post_events(args.events, args.clients, world, port)
            stop_gunicorn(gunicorn)

            from royalties.models import UsageEvent

            stored = UsageEvent.objects.count()
            codes = sorted(
                (code, n)
                for code, n in seen.items()
                if code not in {"accepted", "duplicate", "rejected"}
            )
            print()
            print(f"Answers: {seen['accepted']:,} accepted, {seen['duplicate']:,} duplicates, "
                  f"{seen['rejected']:,} rejected "
                  f"({', '.join(f'{code} {n:,}' for code, n in codes)})")  # fmt: skip
            if stored != seen["accepted"]:
                print(f"MISMATCH: the table holds {stored:,} events, the answers accepted "
                      f"{seen['accepted']:,}.")  # fmt: skip
                return 1
            print(f"The table holds {stored:,} events: exactly those accepted.")
            print("COPY of the same rows …")
            rows, copy_seconds = copy_baseline(url)
            http_rate = args.events / elapsed
            copy_rate = rows / copy_seconds
            print()
            print(f"HTTP ingest (gunicorn, {args.workers} workers, {args.clients} clients, "
                  f"batches of {BATCH:,}): {args.events:,} events in {elapsed:.1f} s = "
                  f"{http_rate:,.0f} events/s")  # fmt: skip
            print(f"PostgreSQL COPY of the same rows:   {rows:,} rows in {copy_seconds:.1f} s = "
                  f"{copy_rate:,.0f} rows/s")  # fmt: skip
            print(f"Ratio COPY/HTTP: {copy_rate / http_rate:.1f}×")
            print(f"Target (≥ {TARGET:,} events/s over HTTP): "
                  f"{'met' if http_rate >= TARGET else 'MISSED'}")  # fmt: skip
    finally:
        if gunicorn is not None:
            stop_gunicorn(gunicorn)
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
