-- Users who moved between free and paid, and when: one row per change seen in their plays over time
SELECT c.user_id, u.first_name, u.last_name, c.from_level, c.to_level,
       c.last_play_before, c.first_play_after
FROM (
    SELECT user_id,
           level AS to_level,
           start_time AS first_play_after,
           LAG(level) OVER (PARTITION BY user_id ORDER BY start_time, session_id, songplay_id) AS from_level,
           LAG(start_time) OVER (PARTITION BY user_id ORDER BY start_time, session_id, songplay_id) AS last_play_before
    FROM songplays
    WHERE level IS NOT NULL
) c
JOIN users u ON u.user_id = c.user_id
WHERE c.from_level <> c.to_level
ORDER BY c.first_play_after, c.user_id
