-- Key figures: plays, listeners, sessions, users, catalogue size, matched plays (match rate) and the period covered
SELECT p.plays, p.listeners, p.sessions, u.users, s.songs, a.artists, p.matched_plays, p.first_play, p.last_play
FROM (
    SELECT COUNT(*) AS plays,
           COUNT(DISTINCT user_id) AS listeners,
           COUNT(DISTINCT CAST(user_id AS VARCHAR) || '/' || CAST(session_id AS VARCHAR)) AS sessions,
           COUNT(song_id) AS matched_plays,
           MIN(start_time) AS first_play,
           MAX(start_time) AS last_play
    FROM songplays
) p
CROSS JOIN (SELECT COUNT(*) AS users FROM users) u
CROSS JOIN (SELECT COUNT(*) AS songs FROM songs) s
CROSS JOIN (SELECT COUNT(*) AS artists FROM artists) a
