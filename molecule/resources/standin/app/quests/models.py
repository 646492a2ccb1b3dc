from django.db import models


class Quest(models.Model):
    STATUS_OPEN = "open"
    STATUS_IN_PROGRESS = "in_progress"
    STATUS_COMPLETED = "completed"
    STATUS_CHOICES = (
        (STATUS_OPEN, "Open"),
        (STATUS_IN_PROGRESS, "In progress"),
        (STATUS_COMPLETED, "Completed"),
    )

    title = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=STATUS_OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.title


class QuestParticipant(models.Model):
    STATUS_JOINED = "joined"
    STATUS_COMPLETED = "completed"
    STATUS_LEFT = "left"
    STATUS_CHOICES = (
        (STATUS_JOINED, "Joined"),
        (STATUS_COMPLETED, "Completed"),
        (STATUS_LEFT, "Left"),
    )

    quest = models.ForeignKey(Quest, on_delete=models.CASCADE, related_name="participants")
    user = models.CharField(max_length=150)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=STATUS_JOINED)
    joined_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.user} in quest #{self.quest_id}"
