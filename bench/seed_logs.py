"""Seed one assistant with a big history for Logs and Metrics: by default 1,000,000 sessions and
10,000,000 messages over the last 90 days, 70% of the sessions from 50 private links.

Steps (each one timed and printed, and written to bench/results/seed-logs-<db>.json):

  schema    a fresh database (PostgreSQL: --pg-database, default portico_bench_logs, dropped and
            recreated; SQLite: --sqlite-path, deleted first), then the project's own commands:
            `portico db upgrade`, `portico demo` (an owner, an API token in
            $DATA_DIR/demo-credentials.txt, and a published live assistant, id 1) and
            `portico links create 1 --from-file` with 50 names
  load      chat_sessions and messages in chunks, in started_at order (ids grow with time, as in
            production; message ids grow with created_at inside a chunk, so transcripts are
            interleaved on disk the way concurrent sessions interleave them).
            PostgreSQL: asyncpg COPY (copy_records_to_table), with the foreign-key triggers off
            (session_replication_role = replica; the rows are consistent by construction) and the
            secondary indexes of both tables dropped first and rebuilt afterwards from their own
            `pg_indexes.indexdef`, then VACUUM ANALYZE; then Logs search's per-session vectors
            (`session_search`, migration 0013) filled by the project's batched backfill.
            SQLite: one sqlite3 connection, one transaction per chunk, executemany; WAL and
            synchronous=OFF while seeding; every index stays in place and the FTS5 insert trigger
            of migration 0004 fills `messages_fts` for every row, as in production. Messages go
            through a temporary table and one INSERT ... SELECT per chunk: executemany straight
            into messages is one statement per row, and FTS5 writes a new segment at the end of
            every statement, about 20 times slower (--sqlite-row-inserts measures that way). No ANALYZE:
            Portico never runs it, so the benchmark sees the planner a real install has.
            A producer thread generates the next chunk while the current one is written.
  links     private_links.sessions_used and last_used_at made consistent with the sessions
  rollup    portico.metrics.rollup.recompute(), one UTC day per transaction, for every day seeded
            (it fills usage_hourly and usage_user_hourly as the running server would have)

The data: started_at uniform over --days; 1% owner previews (channel preview, version 0), ~70%
attributed to the links (Zipf-like, so some users are much busier than others; channel link,
or api with a link key), the rest anonymous widget/api sessions. Each session has an even
number of messages, guest and assistant alternating (2 to 2*(M-1), M = --messages-per-session
on average, exactly M on average over each pair of sessions); a reply is written after its
duration, the guest thinks 5 s to several minutes; 1% of replies fail with error_code
'engine_error'. End reasons: guest, inactivity (600 s after the last message), completed,
max_duration (3600 s after the start), assistant_offline, link_revoked; sessions whose end
would still be in the future are left open (a few dozen, the most recent ones). message_count,
tokens_in and tokens_out of each session are the sums of its messages. The text comes from
templates with a long tail of product names, codes and invented words, so full-text search has
common words ("refund", in a few % of messages), medium ones ("invoice") and a rare one
("quokka", about 1 guest message in 20,000); the counts are printed at the end.

    .venv/bin/python bench/seed_logs.py --db postgresql
    .venv/bin/python bench/seed_logs.py --db sqlite
    .venv/bin/python bench/seed_logs.py --db sqlite --sessions 2000      # a quick try
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import json
import queue
import random
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchkit import fetch_rows, recreate_database, run_cli, settings

RESULTS = Path(__file__).resolve().parent / "results"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
ASSISTANT_ID = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Words the benchmark searches for, in this order in seed.json's word_counts (bench/logs_metrics.py reads them there).
COMMON_WORD = "refund"
MEDIUM_WORD = "invoice"
RARE_WORD = "quokka"
RARE_RATE = 1 / 20_000  # of guest messages

LINK_NAMES = (
    "Ada Lovelace,Alan Turing,Grace Hopper,Edsger Dijkstra,Barbara Liskov,Donald Knuth,Margaret Hamilton,"
    "Ken Thompson,Dennis Ritchie,Frances Allen,John McCarthy,Radia Perlman,Tim Berners-Lee,Vint Cerf,"
    "Bob Kahn,Leslie Lamport,Niklaus Wirth,Tony Hoare,Adele Goldberg,Alan Kay,Butler Lampson,"
    "Shafi Goldwasser,Silvio Micali,Judea Pearl,Fran Bilas,Jean Bartik,Kathleen Booth,Sophie Wilson,"
    "Lynn Conway,Carver Mead,Jim Gray,Michael Stonebraker,Ted Codd,Charles Bachman,Ivan Sutherland,"
    "Doug Engelbart,Katherine Johnson,Dorothy Vaughan,Mary Jackson,Annie Easley,Evelyn Berezin,"
    "Hedy Lamarr,Karen Sparck Jones,Anita Borg,Jeannette Wing,Manuel Blum,Robert Tarjan,John Hopcroft,"
    "Richard Hamming,Claude Shannon,Ole-Johan Dahl,Kristen Nygaard"
).split(",")

PRODUCTS = (
    "Portico Cloud,the starter plan,the team plan,the enterprise plan,the mobile app,the desktop app,"
    "the API,the widget,the analytics add-on,the storage add-on,the premium support,"
    "the annual subscription,the monthly subscription,the free trial,the education discount,"
    "the nonprofit plan,the hardware bundle,the gift card"
).split(",")
THINGS = (
    "password,account,order,subscription,billing address,credit card,profile,workspace,team,project,"
    "export,backup,domain,email address,API key,private link,session,download,receipt,shipping label,"
    "delivery,parcel"
).split(",")
VERBS = (
    "change cancel update reset delete transfer renew upgrade downgrade pause restore share export "
    "verify track return replace merge"
).split()
FEATURES = (
    "single sign-on,two-factor authentication,audit logs,custom domains,webhooks,CSV export,dark mode,"
    "offline mode,usage limits,role permissions,rate limits,data retention,full-text search,"
    "weekly reports,Slack integration,calendar sync"
).split(",")
PLACES = (
    "Berlin,Lisbon,Toronto,Nairobi,Osaka,Melbourne,Lima,Oslo,Austin,Dublin,Seoul,Cape Town,Montreal,"
    "Warsaw,Bogota,Helsinki"
).split(",")
GUEST_TEMPLATES = [
    "How do I {verb} my {thing}?",
    "Hi, I want to {verb} my {thing}, is that possible?",
    "I was charged twice for {product}, what should I do?",
    "Does {product} include {feature}?",
    "Is {feature} available in {place}?",
    "What is the price of {product}?",
    "My {thing} is not working since yesterday, error {code}.",
    "How long does a delivery to {place} take?",
    "Can you explain how {feature} works with {term}?",
    "I forgot my password and the reset email never arrived.",
    "Is there a discount for {product} if I pay yearly?",
    "hello",
    "thanks!",
    "ok and what about {term}?",
    "Can I {verb} {product} without losing my {thing}?",
    "Why was my {thing} {verb}d automatically?",
    "Who do I contact about {term} in {place}?",
    "Do you support {feature} for teams larger than {number} people?",
    "The {term} setting disappeared after the update, where is it now?",
    "What happens to my {thing} when the free trial ends?",
]
REPLY_SENTENCES = [
    "You can {verb} your {thing} from the Settings page, under Account.",
    "Open the menu at the top right, choose {feature}, and follow the steps.",
    "{product} includes {feature} at no extra cost.",
    "Deliveries to {place} usually take {number} to {number2} days.",
    "I could not find anything about {term} in the documentation I have.",
    "That error ({code}) usually means the session expired; signing in again fixes it.",
    "Yes, {feature} is available in {place} as well.",
    "The price of {product} depends on the number of seats; the pricing page has the details.",
    "For questions about {term}, please write to the support team.",
    "After the trial, your {thing} stays available for {number} days in read-only mode.",
    "You can change this at any time; the change applies from the next billing period.",
    "Teams with more than {number} members can ask for a custom quote.",
    "I am sorry about the trouble with your {thing}.",
    "Is there anything else I can help you with?",
    "Here is a short summary: {term}, {term2} and {feature} are all configured per workspace.",
    "To reset your password, use the link on the sign-in page; it is valid for one hour.",
]
# Sentences with the searched words, mixed in at fixed rates (of the pool's texts).
GUEST_EXTRA = [
    (0.03, "Can I get a refund for {product}?"),
    (0.003, "Where can I find the invoice for order {code}?"),
]
REPLY_EXTRA = [
    (0.02, "A refund goes back to the original payment method within {number} business days."),
    (0.002, "Your invoice is under Billing, next to each payment, as a PDF."),
]
SYLLABLES = ("ka lo mi ren tas vo quin bel dor fex gal hu jor nex pra sil tor ul wen zar ob cy mar tel").split()


def invented_words(rng: random.Random, count: int) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class TextPool:
    """Pre-generated message texts (a pool per role), picked at random for each message."""

    def __init__(self, rng: random.Random, size: int = 60_000) -> None:
        terms = invented_words(rng, 6000)
        # A Zipf-like choice of invented words: a few frequent, a long tail of rare ones.
        weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(terms))))

        def slots() -> dict[str, str]:
            t1, t2 = rng.choices(terms, cum_weights=weights, k=2)
            return {
                "verb": rng.choice(VERBS),
                "thing": rng.choice(THINGS),
                "product": rng.choice(PRODUCTS),
                "feature": rng.choice(FEATURES),
                "place": rng.choice(PLACES),
                "term": t1,
                "term2": t2,
                "code": f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randint(1000, 99999)}",
                "number": str(rng.randint(2, 30)),
                "number2": str(rng.randint(31, 60)),
            }

        def with_extra(text: str, extras: list[tuple[float, str]]) -> str:
            for rate, sentence in extras:
                if rng.random() < rate:
                    text = f"{text} {sentence.format(**slots())}"
            return text

        self.guest = [with_extra(rng.choice(GUEST_TEMPLATES).format(**slots()), GUEST_EXTRA) for _ in range(size)]
        self.reply = [
            with_extra(
                " ".join(rng.choice(REPLY_SENTENCES).format(**slots()) for _ in range(rng.randint(1, 4))), REPLY_EXTRA
            )
            for _ in range(size)
        ]
        self.guest_words = [len(t.split()) for t in self.guest]
        self.reply_words = [len(t.split()) for t in self.reply]
        # Which pool entries hold the searched words, to count them while seeding.
        self.guest_has = {w: [w in _words(t) for t in self.guest] for w in (COMMON_WORD, MEDIUM_WORD)}
        self.reply_has = {w: [w in _words(t) for t in self.reply] for w in (COMMON_WORD, MEDIUM_WORD)}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


# --- generation ---------------------------------------------------------------------------------


@dataclass
class Chunk:
    sessions: list[tuple[Any, ...]]
    messages: list[tuple[Any, ...]]
    word_counts: dict[str, int] = field(default_factory=dict)


class Generator:
    """Sessions and their messages, a chunk at a time, in started_at order. Times are integer
    microseconds since the epoch until `convert` turns them into what each driver wants."""

    def __init__(
        self, *, sessions: int, per_session: int, days: int, link_ids: list[int], seed: int, now: datetime
    ) -> None:
        if per_session < 2:
            raise SystemExit("error: --messages-per-session must be at least 2")
        self.rng = random.Random(seed)
        self.pool = TextPool(random.Random(seed + 1))
        self.now_us = _us(now)
        start_us = self.now_us - days * 86_400_000_000
        starts = sorted(self.rng.randrange(start_us, self.now_us) for _ in range(sessions))
        self.starts = starts
        self.per_session = per_session
        self.link_ids = link_ids
        weights = [1 / (rank + 1) ** 0.6 for rank in range(len(link_ids))]
        self.rng.shuffle(weights)
        self.link_weights = list(itertools.accumulate(weights))
        self.next_session_id = 1
        self.next_message_id = 1
        self.turns = self._turns(sessions)

    def _turns(self, sessions: int) -> list[int]:
        # Guest turns per session: t and M - t for each pair, so the mean is exactly M/2 turns.
        m = self.per_session
        out: list[int] = []
        while len(out) < sessions:
            t = self.rng.randint(1, max(1, m - 1))
            out.extend([t, max(1, m - t)])
        out = out[:sessions]
        self.rng.shuffle(out)
        return out

    def chunks(self, size: int):  # type: ignore[no-untyped-def]
        for first in range(0, len(self.starts), size):
            yield self._chunk(first, min(len(self.starts), first + size))

    def _chunk(self, first: int, last: int) -> Chunk:
        rng = self.rng
        pool = self.pool
        counts = {COMMON_WORD: 0, MEDIUM_WORD: 0, RARE_WORD: 0}
        drafts = []
        for index in range(first, last):
            started = self.starts[index]
            r = rng.random()
            if r < 0.01:
                channel, link_id, version = "preview", None, 0
            elif r < 0.71:
                link_id = self.link_ids[bisect.bisect_left(self.link_weights, rng.random() * self.link_weights[-1])]
                channel, version = ("link" if rng.random() < 0.85 else "api"), 1
            else:
                channel, link_id, version = ("widget" if rng.random() < 0.7 else "api"), None, 1
            reason = _reason(rng, link_id)
            turns = self.turns[index]
            think_scale = 3_400 / turns if reason == "max_duration" else 40.0
            # Messages: (created_at, role, content, first_token_ms, duration_ms, tok_in, tok_out, error)
            messages = []
            t = started + rng.randint(2, 60) * 1_000_000
            history = 0
            for turn in range(turns):
                gi = rng.randrange(len(pool.guest))
                content = pool.guest[gi]
                for word in (COMMON_WORD, MEDIUM_WORD):
                    counts[word] += pool.guest_has[word][gi]
                if rng.random() < RARE_RATE:
                    content += f" Do you also sell the {RARE_WORD} edition?"
                    counts[RARE_WORD] += 1
                messages.append((t, "guest", content, None, None, None, None, None))
                history += pool.guest_words[gi] * 4 // 3 + 1
                ri = rng.randrange(len(pool.reply))
                first_token = int(rng.lognormvariate(6.4, 0.5))  # ~600 ms
                if rng.random() < 0.01:
                    reply, tokens_out, error = "", 0, "engine_error"
                    duration, first_token_ms = first_token + rng.randint(0, 30_000), None
                else:
                    reply, error = pool.reply[ri], None
                    tokens_out = pool.reply_words[ri] * 4 // 3 + 1
                    duration = first_token + tokens_out * rng.randint(12, 30)
                    first_token_ms = first_token
                    for word in (COMMON_WORD, MEDIUM_WORD):
                        counts[word] += pool.reply_has[word][ri]
                tokens_in = 400 + history  # instructions and knowledge, then the history so far
                t += duration * 1000
                messages.append((t, "assistant", reply, first_token_ms, duration, tokens_in, tokens_out, error))
                history += tokens_out
                if turn < turns - 1:
                    think = min(590.0, rng.expovariate(1 / think_scale) + 5)
                    t += int(think * 1_000_000)
            last = messages[-1][0]
            if last > self.now_us - 1_000_000:
                # Would end in the future: move the whole session back so its last reply is past.
                shift = last - (self.now_us - rng.randint(1, 120) * 1_000_000)
                started -= shift
                messages = [(m[0] - shift, *m[1:]) for m in messages]
                last = messages[-1][0]
            if reason == "inactivity":
                ended = last + 600_000_000
            elif reason == "max_duration":
                ended = max(started + 3_600_000_000, last + 1_000_000)
            elif reason == "completed":
                ended = last + 1_000_000
            else:
                ended = last + rng.randint(5, 180) * 1_000_000
            if ended > self.now_us:
                ended, reason = None, None
            drafts.append((started, link_id, channel, version, last, ended, reason, messages))
        drafts.sort(key=lambda d: d[0])
        sessions = []
        flat = []
        for started, link_id, channel, version, last, ended, reason, messages in drafts:
            sid = self.next_session_id
            self.next_session_id += 1
            tin = sum(m[5] or 0 for m in messages)
            tout = sum(m[6] or 0 for m in messages)
            digest = hashlib.sha256(f"portico-bench-session-{sid}".encode()).hexdigest()
            sessions.append(
                (
                    sid,
                    ASSISTANT_ID,
                    version,
                    link_id,
                    channel,
                    digest,
                    started,
                    last,
                    ended,
                    reason,
                    len(messages),
                    tin,
                    tout,
                )
            )
            for m in messages:
                flat.append((m[0], sid, m))
        flat.sort(key=lambda f: (f[0], f[1]))
        rows = []
        mid = self.next_message_id
        for created, sid, m in flat:
            rows.append((mid, sid, m[1], m[2], created, m[3], m[4], m[5], m[6], m[7]))
            mid += 1
        self.next_message_id = mid
        return Chunk(sessions, rows, counts)


def _reason(rng: random.Random, link_id: int | None) -> str:
    r = rng.random()
    if r < 0.38:
        return "guest"
    if r < 0.80:
        return "inactivity"
    if r < 0.93:
        return "completed"
    if r < 0.95:
        return "max_duration"
    if r < 0.98:
        return "assistant_offline"
    return "link_revoked" if link_id is not None else "guest"


def _us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


SESSION_COLUMNS = [
    "id",
    "assistant_id",
    "version_number",
    "link_id",
    "channel",
    "token_digest",
    "started_at",
    "last_activity_at",
    "ended_at",
    "end_reason",
    "message_count",
    "tokens_in",
    "tokens_out",
]
MESSAGE_COLUMNS = [
    "id",
    "session_id",
    "role",
    "content",
    "created_at",
    "first_token_ms",
    "duration_ms",
    "tokens_in",
    "tokens_out",
    "error_code",
]
SESSION_TIMES = (6, 7, 8)
MESSAGE_TIMES = (4,)


def _to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _to_sqlite(us: int) -> str:
    # SQLAlchemy's SQLite DATETIME format, naive UTC, always with microseconds.
    return (datetime(1970, 1, 1) + timedelta(microseconds=us)).strftime("%Y-%m-%d %H:%M:%S.%f")


def convert(chunk: Chunk, to: Any) -> Chunk:
    def fix(row: tuple[Any, ...], at: tuple[int, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i in at:
            if values[i] is not None:
                values[i] = to(values[i])
        return tuple(values)

    return Chunk(
        [fix(r, SESSION_TIMES) for r in chunk.sessions],
        [fix(r, MESSAGE_TIMES) for r in chunk.messages],
        chunk.word_counts,
    )


def produce(gen: Generator, size: int, to: Any, out: queue.Queue[Chunk | None | BaseException]) -> None:
    try:
        for chunk in gen.chunks(size):
            out.put(convert(chunk, to))
        out.put(None)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
        out.put(exc)


def chunks_in_background(gen: Generator, size: int, to: Any):  # type: ignore[no-untyped-def]
    out: queue.Queue[Chunk | None | BaseException] = queue.Queue(maxsize=2)
    thread = threading.Thread(target=produce, args=(gen, size, to, out), daemon=True)
    thread.start()
    while True:
        item = out.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


# --- loading --------------------------------------------------------------------------------------


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def record(self, name: str, started: float) -> None:
        self.seconds[name] = round(time.perf_counter() - started, 1)
        print(f"  {name}: {self.seconds[name]:.1f} s", flush=True)


async def load_postgresql(gen: Generator, name: str, chunk_size: int, phases: Phases) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
    counts = {COMMON_WORD: 0, MEDIUM_WORD: 0, RARE_WORD: 0}
    try:
        indexes = await conn.fetch(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.schemaname = 'public' AND i.tablename IN ('chat_sessions', 'messages')
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
               ORDER BY i.tablename, i.indexname"""
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        await conn.execute("SET session_replication_role = replica")
        started = time.perf_counter()
        done_sessions = done_messages = 0
        for chunk in chunks_in_background(gen, chunk_size, _to_datetime):
            async with conn.transaction():
                await conn.copy_records_to_table("chat_sessions", records=chunk.sessions, columns=SESSION_COLUMNS)
                await conn.copy_records_to_table("messages", records=chunk.messages, columns=MESSAGE_COLUMNS)
            done_sessions += len(chunk.sessions)
            done_messages += len(chunk.messages)
            for word, n in chunk.word_counts.items():
                counts[word] += n
            _progress(started, done_sessions, done_messages, len(gen.starts))
        phases.record("copy (sessions + messages, no secondary indexes)", started)
        await conn.execute("SET session_replication_role = DEFAULT")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        for row in indexes:
            one = time.perf_counter()
            await conn.execute(row["indexdef"])
            phases.record(f"index {row['indexname']}", one)
        phases.record("indexes (total)", started)
        for table in ("chat_sessions", "messages"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )
        started = time.perf_counter()
        await conn.execute(LINKS_UPDATE)
        phases.record("links: sessions_used, last_used_at", started)
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) chat_sessions")
        await conn.execute("VACUUM (ANALYZE) messages")
        await conn.execute("VACUUM (ANALYZE) private_links")
        phases.record("vacuum analyze", started)
        if await conn.fetchval("SELECT to_regclass('session_search_backfill') IS NOT NULL"):
            # COPY ran with triggers off: Logs search's vectors (migration 0013) are filled by the
            # project's own backfill, as after an upgrade (search_vectors, below).
            await conn.execute("DELETE FROM session_search_backfill")
            await conn.execute("INSERT INTO session_search_backfill SELECT coalesce(max(id), 0) + 1 FROM chat_sessions")
    finally:
        await conn.close()
    return counts


LINKS_UPDATE = """UPDATE private_links SET
    sessions_used = (SELECT count(*) FROM chat_sessions s WHERE s.link_id = private_links.id),
    last_used_at = (SELECT max(started_at) FROM chat_sessions s WHERE s.link_id = private_links.id)"""


def load_sqlite(gen: Generator, path: Path, chunk_size: int, phases: Phases, row_inserts: bool) -> dict[str, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    counts = {COMMON_WORD: 0, MEDIUM_WORD: 0, RARE_WORD: 0}
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1048576")  # 1 GiB, for the random token_digest index
        conn.execute("PRAGMA temp_store=MEMORY")
        session_sql = (
            f"INSERT INTO chat_sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({', '.join('?' * len(SESSION_COLUMNS))})"
        )
        message_sql = (
            f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})"
        )
        if not row_inserts:
            # executemany straight into messages runs the FTS5 trigger in one statement per row, and
            # FTS5 flushes its pending terms to a new segment at every statement (about 20x slower);
            # one INSERT ... SELECT per chunk from a temporary table runs the same trigger in one.
            conn.execute("CREATE TEMP TABLE staging_messages AS SELECT * FROM main.messages WHERE 0")
            message_sql = message_sql.replace("INSERT INTO messages", "INSERT INTO temp.staging_messages")
        started = time.perf_counter()
        done_sessions = done_messages = 0
        for chunk in chunks_in_background(gen, chunk_size, _to_sqlite):
            conn.execute("BEGIN")
            conn.executemany(session_sql, chunk.sessions)
            conn.executemany(message_sql, chunk.messages)
            if not row_inserts:
                conn.execute(
                    f"INSERT INTO main.messages ({', '.join(MESSAGE_COLUMNS)}) "
                    f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM temp.staging_messages ORDER BY id"
                )
                conn.execute("DELETE FROM temp.staging_messages")
            conn.execute("COMMIT")
            done_sessions += len(chunk.sessions)
            done_messages += len(chunk.messages)
            for word, n in chunk.word_counts.items():
                counts[word] += n
            _progress(started, done_sessions, done_messages, len(gen.starts))
        phases.record("insert (sessions + messages, all indexes and the FTS5 trigger live)", started)
        started = time.perf_counter()
        conn.execute(LINKS_UPDATE)
        phases.record("links: sessions_used, last_used_at", started)
        started = time.perf_counter()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        phases.record("wal checkpoint", started)
    finally:
        conn.close()
    return counts


def _progress(started: float, sessions: int, messages: int, total: int) -> None:
    elapsed = time.perf_counter() - started
    print(
        f"    {sessions:>9,} / {total:,} sessions, {messages:>11,} messages, {elapsed:7.1f} s, "
        f"{messages / max(elapsed, 1e-9):,.0f} messages/s",
        flush=True,
    )


async def search_vectors(url: str, phases: Phases) -> None:
    """Logs search's vectors, by the backfill `portico db upgrade` and the server run (batches of 2,000)."""
    from portico.db import make_engine, make_sessionmaker
    from portico.metrics.search import backfill_now

    engine = make_engine(url)
    started = time.perf_counter()
    try:
        batches = await backfill_now(make_sessionmaker(engine))
    finally:
        await engine.dispose()
    phases.record(f"search vectors (backfill, {batches} batches)", started)


async def rollup(url: str, now: datetime, days: int, phases: Phases) -> int:
    from portico.db import make_engine, make_sessionmaker
    from portico.metrics.rollup import recompute

    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = midnight - timedelta(days=days)
    written = 0
    started = time.perf_counter()
    slowest = 0.0
    try:
        while day <= now:
            one = time.perf_counter()
            async with sessionmaker() as db, db.begin():
                written += await recompute(db, start=day, end=day + timedelta(days=1))
            slowest = max(slowest, time.perf_counter() - one)
            day += timedelta(days=1)
    finally:
        await engine.dispose()
    phases.record(f"rollup recompute ({days + 1} days, {written:,} rows, slowest day {slowest:.2f} s)", started)
    return written


async def pg_sizes(name: str) -> dict[str, int]:
    """The database, and each big table (heap and TOAST) and index on its own."""
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
    try:
        out = {"database": await conn.fetchval("SELECT pg_database_size(current_database())")}
        for row in await conn.fetch(
            """SELECT c.relname, CASE c.relkind WHEN 'r' THEN pg_table_size(c.oid) ELSE pg_relation_size(c.oid) END
                        AS size
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 2 DESC LIMIT 16"""
        ):
            out[row["relname"]] = row["size"]
        return out
    finally:
        await conn.close()


def sqlite_sizes(path: Path) -> dict[str, int]:
    out = {"database": sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))}
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 16").fetchall()
        out.update({name: size for name, size in rows})
    except sqlite3.OperationalError:
        pass  # no dbstat in this build: the file size only
    finally:
        conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--messages-per-session", type=int, default=10)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--links", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=20_000, help="sessions per transaction")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument(
        "--sqlite-row-inserts",
        action="store_true",
        help="SQLite: executemany straight into messages (one statement per row, as the app "
        "writes them), instead of one INSERT ... SELECT per chunk",
    )
    parser.add_argument("--pg-database", default="portico_bench_logs")
    parser.add_argument("--data-dir", type=Path, help="default bench/results/logs-<db>")
    parser.add_argument("--sqlite-path", type=Path, help="default <data-dir>/portico.db")
    args = parser.parse_args()
    if not 1 <= args.links <= len(LINK_NAMES):
        raise SystemExit(f"error: --links must be between 1 and {len(LINK_NAMES)}")

    data_dir = (args.data_dir or RESULTS / f"logs-{args.db}").resolve()
    phases = Phases()
    total = time.perf_counter()
    print(f"Seeding {args.db}: {args.sessions:,} sessions, ~{args.sessions * args.messages_per_session:,} messages")

    started = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Only the files this script and `portico demo` write: a fresh secret key and credentials.
    for stale in ("secret_key", "demo-credentials.txt", "link-names.txt", "seed.json", "cli.log"):
        (data_dir / stale).unlink(missing_ok=True)
    if args.db == "postgresql":
        url = PG_URL.format(name=args.pg_database)
        asyncio.run(recreate_database(url))
        sqlite_path = None
    else:
        sqlite_path = (args.sqlite_path or data_dir / "portico.db").resolve()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{sqlite_path}"
    config = settings(data_dir, url)
    log_path = data_dir / "cli.log"
    run_cli(config, ["db", "upgrade"], log_path)
    run_cli(config, ["demo"], log_path)
    names = data_dir / "link-names.txt"
    names.write_text("\n".join(LINK_NAMES[: args.links]) + "\n")
    max_links = str(max(50, args.links))
    run_cli(
        config,
        ["links", "create", str(ASSISTANT_ID), "--from-file", str(names)],
        log_path,
        PORTICO_MAX_PRIVATE_LINKS=max_links,
    )
    phases.record("schema, demo owner and assistant, links (portico CLI)", started)
    query = f"SELECT id FROM private_links WHERE assistant_id = {ASSISTANT_ID} ORDER BY id"
    link_ids = [row[0] for row in fetch_rows(url, query)]

    now = datetime.now(UTC)
    started = time.perf_counter()
    gen = Generator(
        sessions=args.sessions,
        per_session=args.messages_per_session,
        days=args.days,
        link_ids=link_ids,
        seed=args.seed,
        now=now,
    )
    phases.record("generator set-up (start times, text pool)", started)
    load_started = time.perf_counter()
    if args.db == "postgresql":
        counts = asyncio.run(load_postgresql(gen, args.pg_database, args.chunk, phases))
    else:
        assert sqlite_path is not None
        counts = load_sqlite(gen, sqlite_path, args.chunk, phases, args.sqlite_row_inserts)
    phases.record("load (total)", load_started)
    if args.db == "postgresql":
        asyncio.run(search_vectors(url, phases))
    messages = gen.next_message_id - 1
    asyncio.run(rollup(url, now, args.days, phases))
    phases.record("total", total)

    sizes = asyncio.run(pg_sizes(args.pg_database)) if args.db == "postgresql" else sqlite_sizes(sqlite_path)  # type: ignore[arg-type]
    print(f"Size: {sizes['database'] / 2**30:.2f} GiB")
    for name, size in sizes.items():
        if name != "database":
            print(f"  {name}: {size / 2**20:,.0f} MiB")
    print(
        f"Messages containing '{COMMON_WORD}': ~{counts[COMMON_WORD]:,}; '{MEDIUM_WORD}': ~{counts[MEDIUM_WORD]:,}; "
        f"'{RARE_WORD}': {counts[RARE_WORD]:,}"
    )
    summary = {
        "db": args.db,
        "url": url,
        "data_dir": str(data_dir),
        "sessions": args.sessions,
        "messages": messages,
        "days": args.days,
        "links": args.links,
        "seeded_at": now.isoformat(),
        "phases_seconds": phases.seconds,
        "sizes_bytes": sizes,
        "word_counts": counts,
    }
    (data_dir / "seed.json").write_text(json.dumps(summary, indent=2))
    # The summary beside the other results only for the default data folder (not for a try elsewhere).
    out = (
        RESULTS / f"seed-logs-{args.db}.json"
        if data_dir == (RESULTS / f"logs-{args.db}").resolve()
        else data_dir / "seed.json"
    )
    out.write_text(json.dumps(summary, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
