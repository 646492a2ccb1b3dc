"""Create consistent sample data (idempotent: reports how many objects were new)."""

from applications.models import Application
from django.core.management.base import BaseCommand
from django.db import transaction

from quests.models import Quest, QuestParticipant
from quests.standin_data import SEED_QUESTS


class Command(BaseCommand):
    help = "Create sample quests, applications and matching participants."

    @transaction.atomic
    def handle(self, *args, **options):
        created = 0
        for title, quest_status, members in SEED_QUESTS:
            quest, new = Quest.objects.get_or_create(title=title, defaults={"status": quest_status})
            created += new
            for applicant, app_status, participant_status in members:
                _, new = Application.objects.get_or_create(
                    quest=quest, applicant=applicant, defaults={"status": app_status}
                )
                created += new
                if participant_status:
                    _, new = QuestParticipant.objects.get_or_create(
                        quest=quest, user=applicant, defaults={"status": participant_status}
                    )
                    created += new
        # Provisioning uses this line for changed_when.
        self.stdout.write(f"standin_seed: created {created} object(s)")
