"""Flatten the alert addresses so each can be checked with its variable name."""


def alerting_addresses(recipients, sender):
    out = [{"var": "peerquest_alerting_email_from", "address": sender}]
    for severity, addresses in sorted((recipients or {}).items()):
        for address in addresses or []:
            out.append({"var": f"peerquest_alerting_email_recipients.{severity}", "address": address})
    return out


class FilterModule:
    def filters(self):
        return {"peerquest_alerting_addresses": alerting_addresses}
