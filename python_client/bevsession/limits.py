"""The database's limits, as Python checks them before a call (one module; a test keeps it equal).

Each number is the literal of one domain or CHECK in ``supabase/migrations`` (named after it in the
comment); ``tests/test_limits.py`` reads the constraints from ``pg_constraint`` and fails when the
two differ. Checking here first only gives a caller an earlier, clearer error: the database
enforces every limit itself.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_BROCHURE_ID_CHARS",
    "MAX_ESTIMATED_READ_TIME_CHARS",
    "MAX_HISTORY_PAGE",
    "MAX_MESSAGE_CHARS",
    "MAX_PAIN_POINTS",
    "MAX_PURGE_BATCH",
    "MAX_QUESTIONS",
    "MAX_QUESTION_CHARS",
    "MAX_SEED_BATCH",
    "MAX_SIGNALS_PER_TURN",
    "MAX_SIGNAL_TEXT_CHARS",
    "MAX_TOUCH_BATCH",
    "MIN_RETENTION_MS",
]

MAX_MESSAGE_CHARS: Final = 8000  # domain bevsession.message_content
MAX_SIGNAL_TEXT_CHARS: Final = 2000  # domain bevsession.signal_text
MAX_PAIN_POINTS: Final = 32  # domain bevsession.pain_points
MAX_QUESTIONS: Final = 50  # domain bevsession.questions
MAX_QUESTION_CHARS: Final = 1000  # domain bevsession.question
MAX_HISTORY_PAGE: Final = 200  # domain bevsession.page_size
MAX_ESTIMATED_READ_TIME_CHARS: Final = 20  # domain bevsession.read_time
MAX_BROCHURE_ID_CHARS: Final = 200  # domain bevsession.brochure_id
MIN_RETENTION_MS: Final = 86_400_000  # domain bevsession.retention_ms: purge_sessions' shortest age
MAX_PURGE_BATCH: Final = 100_000  # domain bevsession.purge_batch
MAX_TOUCH_BATCH: Final = 10_000  # domain bevsession.touch_batch: ids per touch_sessions call
MAX_SEED_BATCH: Final = 50_000  # domain bevsession.seed_batch: rows per import_seed_* call
MAX_SIGNALS_PER_TURN: Final = 50  # begin_chat_turn's check of `signals`
