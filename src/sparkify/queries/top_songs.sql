-- The 10 most played songs (only plays matched to a song of the catalogue count: see overview's matched_plays)
SELECT s.song_id, s.title, a.name AS artist, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN songs s ON s.song_id = p.song_id
JOIN artists a ON a.artist_id = s.artist_id
GROUP BY s.song_id, s.title, a.name
ORDER BY plays DESC, s.song_id
LIMIT 10
