"""Fixed data used by the standin_* management commands (shared so fix undoes exactly what break did)."""

# (title, status, [(applicant, application status, participant status or None)])
SEED_QUESTS = [
    (
        "Map the old library",
        "open",
        [("player-01", "approved", "joined"), ("player-02", "pending", None)],
    ),
    (
        "Repair the river bridge",
        "in_progress",
        [
            ("player-02", "approved", "joined"),
            ("player-03", "approved", "left"),
            ("player-04", "rejected", None),
        ],
    ),
    (
        "Chart the northern coast",
        "completed",
        [("player-01", "approved", "completed"), ("player-03", "approved", "completed")],
    ),
]

# standin_break_sync creates exactly this quest + approved application (and no participant).
BREAK_QUEST_TITLE = "Standin sync-break quest"
BREAK_APPLICANT = "player-sync-break"
