"""The QCaaS wire protocol, sans I/O: endpoint tables of both dialects, exact request bodies,
typed answer records, status mapping and error bodies. Imports neither trio nor httpx; shared
by the client and the emulator."""

from .dialect import Dialect, dialect_from_env, resolve_dialect
from .endpoints import Api, Request
from .errors import (
    TRANSIENT_STATUSES,
    error_body,
    exception_for_status,
    parse_error_message,
    parse_retry_after,
    server_messages,
)
from .payload import (
    MAX_REQUEST_BYTES,
    chunk_tasks,
    encode,
    encode_task,
    headers_size,
    submit_body,
    task_dict,
    with_task_id,
)
from .records import (
    QpuRecord,
    TaskInfo,
    parse_features,
    parse_login_token,
    parse_next_window,
    parse_qpus,
    parse_single_submit,
    parse_task_ids,
    parse_task_info,
    parse_version,
)
from .status import (
    EXPIRED_ERROR_CODE,
    TERMINAL_STATES,
    JobState,
    TaskStatus,
    is_expired,
    map_status,
)

__all__ = [
    "EXPIRED_ERROR_CODE",
    "MAX_REQUEST_BYTES",
    "TERMINAL_STATES",
    "TRANSIENT_STATUSES",
    "Api",
    "Dialect",
    "JobState",
    "QpuRecord",
    "Request",
    "TaskInfo",
    "TaskStatus",
    "chunk_tasks",
    "dialect_from_env",
    "encode",
    "encode_task",
    "error_body",
    "exception_for_status",
    "headers_size",
    "is_expired",
    "map_status",
    "parse_error_message",
    "parse_features",
    "parse_login_token",
    "parse_next_window",
    "parse_qpus",
    "parse_retry_after",
    "parse_single_submit",
    "parse_task_ids",
    "parse_task_info",
    "parse_version",
    "resolve_dialect",
    "server_messages",
    "submit_body",
    "task_dict",
    "with_task_id",
]
