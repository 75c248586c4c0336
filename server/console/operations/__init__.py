"""The operations screen, the guard's home page: the door board, the alarm inbox and the live event feed.

- `routes`: the blueprint (the page, acknowledging and resolving alarms, the Server-Sent Events stream).
- `forms`: the page's filter form and the alarm action form.
- `scope`: which sites and doors a user watches (their sites, narrowed by the page's site and door group).
- `rows`: what each part shows, read in a few queries (door board, open alarms, feed rows).
- `words`: door states, alarm kinds and severities in words, with their badges.
- `stream`: the event stream itself: feed items after a remembered id, polled in short sessions.
"""
