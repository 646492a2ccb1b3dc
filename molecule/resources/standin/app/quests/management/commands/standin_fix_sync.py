"""Remove what standin_break_sync created."""

from django.core.management.base import BaseCommand

from quests.models import Quest
from quests.standin_data import BREAK_QUEST_TITLE


class Command(BaseCommand):
    help = "Delete the quest (and its application) created by standin_break_sync."

    def handle(self, *args, **options):
        # Deleting the quest cascades to its applications and participants.
        deleted, _ = Quest.objects.filter(title=BREAK_QUEST_TITLE).delete()
        self.stdout.write(f"standin_fix_sync: deleted {deleted} object(s)")
