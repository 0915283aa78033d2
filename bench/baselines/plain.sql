-- A plain DuckDB ETL, without the spec's rules: no mojibake repair, no rejects or line numbers,
-- no identity dedupe, no increments, no atomic merge. Reads the JSON, builds the five tables,
-- writes them to the DuckDB file it runs in. Variables: songs, logs (globs).
SET preserve_insertion_order = false;
SET TimeZone = 'UTC';

-- One small file per song: read_text + json_transform (read_json spends ~1 ms per file here).
CREATE TEMP TABLE staging_songs AS
SELECT unnest(json_transform(content, '{"song_id": "VARCHAR", "title": "VARCHAR", "artist_id": "VARCHAR",
    "artist_name": "VARCHAR", "artist_location": "VARCHAR", "artist_latitude": "DOUBLE",
    "artist_longitude": "DOUBLE", "duration": "DOUBLE", "year": "INTEGER"}'))
FROM read_text(getvariable('songs'));

CREATE TEMP TABLE staging_events AS
SELECT * FROM read_json(getvariable('logs'), format = 'newline_delimited', columns = {
    artist: 'VARCHAR', firstName: 'VARCHAR', gender: 'VARCHAR', itemInSession: 'BIGINT',
    lastName: 'VARCHAR', length: 'DOUBLE', level: 'VARCHAR', location: 'VARCHAR', page: 'VARCHAR',
    sessionId: 'BIGINT', song: 'VARCHAR', ts: 'BIGINT', userAgent: 'VARCHAR', userId: 'VARCHAR'},
    ignore_errors = true);

CREATE TABLE artists (artist_id VARCHAR PRIMARY KEY, name VARCHAR, location VARCHAR,
                      latitude DOUBLE, longitude DOUBLE);
INSERT INTO artists
SELECT artist_id, any_value(artist_name), any_value(artist_location),
       any_value(artist_latitude), any_value(artist_longitude)
FROM staging_songs WHERE artist_id IS NOT NULL GROUP BY artist_id;

CREATE TABLE songs (song_id VARCHAR PRIMARY KEY, title VARCHAR, artist_id VARCHAR,
                    year INTEGER, duration DOUBLE);
INSERT INTO songs
SELECT song_id, any_value(title), any_value(artist_id), nullif(any_value(year), 0), any_value(duration)
FROM staging_songs WHERE song_id IS NOT NULL GROUP BY song_id;

CREATE TABLE users (user_id INTEGER PRIMARY KEY, first_name VARCHAR, last_name VARCHAR,
                    gender VARCHAR, level VARCHAR);
INSERT INTO users
SELECT userId::INTEGER, arg_max(firstName, ts), arg_max(lastName, ts), arg_max(gender, ts), arg_max(level, ts)
FROM staging_events WHERE userId <> '' GROUP BY userId;

CREATE TEMP TABLE plays AS
SELECT e.*, epoch_ms(e.ts)::TIMESTAMPTZ AS start_time
FROM staging_events e WHERE e.page = 'NextSong' AND e.userId <> '';

CREATE TABLE time (start_time TIMESTAMPTZ PRIMARY KEY, hour INTEGER, day INTEGER, week INTEGER,
                   month INTEGER, year INTEGER, weekday INTEGER);
INSERT INTO time
SELECT t, hour(t), day(t), week(t), month(t), year(t), isodow(t)
FROM (SELECT DISTINCT start_time AS t FROM plays);

CREATE TABLE songplays (songplay_id BIGINT PRIMARY KEY, start_time TIMESTAMPTZ, user_id INTEGER,
                        level VARCHAR, song_id VARCHAR, artist_id VARCHAR, session_id BIGINT,
                        location VARCHAR, user_agent VARCHAR);
INSERT INTO songplays
SELECT row_number() OVER (), p.start_time, p.userId::INTEGER, p.level, s.song_id, s.artist_id,
       p.sessionId, p.location, p.userAgent
FROM plays p LEFT JOIN staging_songs s
  ON s.title = p.song AND s.artist_name = p.artist AND s.duration = p.length;
