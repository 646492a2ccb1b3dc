"""Check that approved applications and quest participants agree with each other.

Exit status 1 when any issue is found so that schedulers and monitors can alert on it.
"""

import logging

from applications.models import Application
from django.core.management.base import BaseCommand

from quests.models import QuestParticipant

audit_logger = logging.getLogger("audit")
applications_logger = logging.getLogger("applications")


class Command(BaseCommand):
    help = "Report approved applications without participant and participants without approved application."

    def handle(self, *args, **options):
        approved = list(
            Application.objects.filter(status=Application.STATUS_APPROVED).select_related("quest").order_by("id")
        )
        participants = list(QuestParticipant.objects.select_related("quest").order_by("id"))
        approved_keys = {(app.quest_id, app.applicant) for app in approved}
        participant_keys = {(part.quest_id, part.user) for part in participants}

        issues = []
        for app in approved:
            if (app.quest_id, app.applicant) not in participant_keys:
                issues.append(
                    f"approved application #{app.pk} (quest #{app.quest_id} '{app.quest.title}', "
                    f"applicant '{app.applicant}') has no quest participant"
                )
        for part in participants:
            if (part.quest_id, part.user) not in approved_keys:
                issues.append(
                    f"quest participant #{part.pk} (quest #{part.quest_id} '{part.quest.title}', "
                    f"user '{part.user}') has no approved application"
                )

        for issue in issues:
            self.stdout.write(issue)
            applications_logger.warning("application/participant sync issue: %s", issue)
        self.stdout.write(f"TOTAL ISSUES: {len(issues)}")
        audit_logger.info(
            "application/participant sync audit: %d issue(s) in %d approved applications and %d participants",
            len(issues),
            len(approved),
            len(participants),
        )
        if issues:
            self.stdout.flush()
            raise SystemExit(1)
