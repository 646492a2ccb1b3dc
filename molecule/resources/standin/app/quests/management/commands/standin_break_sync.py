"""Introduce exactly one sync issue: an approved application without a participant."""

from applications.models import Application
from django.core.management.base import BaseCommand
from django.db import transaction

from quests.models import Quest, QuestParticipant
from quests.standin_data import BREAK_APPLICANT, BREAK_QUEST_TITLE


class Command(BaseCommand):
    help = "Create an approved application with no matching quest participant (audit then finds 1 issue)."

    @transaction.atomic
    def handle(self, *args, **options):
        quest, _ = Quest.objects.get_or_create(title=BREAK_QUEST_TITLE, defaults={"status": Quest.STATUS_OPEN})
        # Repeated runs must still leave exactly one issue.
        QuestParticipant.objects.filter(quest=quest).delete()
        Application.objects.filter(quest=quest).exclude(applicant=BREAK_APPLICANT).delete()
        app, created = Application.objects.update_or_create(
            quest=quest, applicant=BREAK_APPLICANT, defaults={"status": Application.STATUS_APPROVED}
        )
        state = "created" if created else "already present"
        self.stdout.write(f"standin_break_sync: application #{app.pk} on quest #{quest.pk} {state}")
