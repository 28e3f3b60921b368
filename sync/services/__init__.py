"""The only code of the sync app that changes state. Each service writes its audit entry.

The SyncML engine (`sync.services.engine`) is part of this layer: it is the only writer of
sessions, maps, shadows and DB2 items during a sync.
"""

from sync.services.alerts import SAN_SYNC_TYPES, send_server_alert  # noqa: F401
from sync.services.profiles import (  # noqa: F401
    applet_operation_parameters,
    approve_held_delete,
    build_param_record,
    build_server_alert,
    create_profile,
    create_template,
    delete_contact,
    record_card_version,
    record_card_version_for_card,
    reject_held_delete,
    reset_credentials,
    save_contact,
    update_profile,
    update_template,
)
