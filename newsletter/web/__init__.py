"""The web side (``newsletter serve``): subscribe, confirm, preferences, unsubscribe.

app            create_app(config, engine): the Starlette application, headers, errors
common         what every page shares: the context, rendering, token look-ups
csrf           signed double-submit tokens for the forms
home           / and the "how to unsubscribe" page
subscribe      /subscribe (double opt-in) and /confirm/{token}
preferences    /preferences/{token}
unsubscribe    /unsubscribe/{token}, one click (RFC 8058)
confirm_mail   the confirmation email, sent with aiosmtplib
"""

from newsletter.web.app import create_app

__all__ = ["create_app"]
