"""The mailer: one message per subscriber, delivered over SMTP without loss or silent repeats.

    message     one serialized template per variant; a cheap per-subscriber fill on bytes
    single      one message outside any issue (confirmation, review link)
    dkim        optional DKIM signature (List-Unsubscribe and -Post signed)
    smtp        the sender pool: N reused aiosmtplib connections, retries
    ratelimit   rate limits per process, and global ones shared through the database
    deliveries  the delivery log in SQL: rows, claims (leases), results
    send        the loop that ties them together for one issue

``pipeline`` calls :func:`newsletter.mailer.send.send_issue`; nothing here reads the config
file or opens the database itself.
"""
