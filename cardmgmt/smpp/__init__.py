"""SMPP 3.4 for the OTA delivery path: PDU codec, delivery receipts and an asyncio ESME.

Pure protocol code: asyncio and the standard library only, no Django. The SMSC simulator in
`handset.smsc` is built on the same codec and session.
"""
