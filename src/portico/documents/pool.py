"""Converting files off the event loop, in a bounded pool of worker processes.

A process, not a thread: a file that loops its parser or swells in memory is stopped at the time
limit (the pool's workers are ended and a new pool starts) and held to a memory limit (an address
space limit set in each worker), which a thread in the server's own process could not be. The
workers start from a fork server, so they carry nothing of the server's event loop or connections.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from portico.documents.convert import ConversionFailed, Converted, convert

# What one worker may hold (address space): parsing a 20 MB file needs a fraction of it.
WORKER_MEMORY = 2 * 1024 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))


class ConversionPool:
    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("forkserver"), initializer=_limit_memory
            )
        return self._pool

    async def convert(self, filename: str, data: bytes, *, max_pages: int, seconds: float) -> Converted:
        pool = self._get()
        future = asyncio.get_running_loop().run_in_executor(pool, _convert, filename, data, max_pages)
        try:
            return await asyncio.wait_for(future, seconds)
        except TimeoutError:
            self._stop(pool)
            raise ConversionFailed(
                "document_timeout", f"Reading the file took longer than {seconds:g} seconds; it was stopped."
            ) from None
        except BrokenProcessPool:
            self._stop(pool)
            raise ConversionFailed(
                "document_too_complex", "Reading the file needed more than a document may use; it was stopped."
            ) from None

    def _stop(self, pool: ProcessPoolExecutor) -> None:
        """End a pool whose worker is stuck: the next file gets a new one (files converting in it
        meanwhile fail as stopped; their owners may upload them again)."""
        if self._pool is pool:
            self._pool = None
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._stop(self._pool)


def _convert(filename: str, data: bytes, max_pages: int) -> Converted:
    return convert(filename, data, max_pages=max_pages)
