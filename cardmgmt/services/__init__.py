"""Every change to cards, subscribers, applets and OTA jobs goes through these functions.

Each takes the actor, runs in a transaction, validates, writes an audit entry, and enqueues
follow-up work with `transaction.on_commit`. Views, API views, tasks and commands call these.
Split by domain: inventory (cards, keys, subscribers, imports), catalog (applets), delivery
(OTA jobs, messages, PoRs).
"""

from cardmgmt.services.catalog import *  # noqa: F403
from cardmgmt.services.delivery import *  # noqa: F403
from cardmgmt.services.inventory import *  # noqa: F403
from cardmgmt.services.inventory import _IMPORT_KINDS, _CardImport  # noqa: F401
