"""The other side of the portal, for demos, tests and lab use.

An SMSC that speaks SMPP 3.4 (`handset.smsc`), and later virtual UICCs and virtual handsets. It
imports the pure protocol packages (`cardmgmt.smpp`, `cardmgmt.ota`, `sync.syncml`), never Django.
Run the pieces standalone with `python -m handset <command>`.
"""
