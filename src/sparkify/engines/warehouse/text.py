"""The text rules of normalize.py in SQL, for the in-warehouse engine: trim, unquote, repair, match keys.

ASCII values are handled by plain SQL expressions; the rare non-ASCII ones
go through functions each warehouse defines (`text_functions`): the mojibake
repair as a SQL UDF on both, the rest in PL/pgSQL on PostgreSQL and as SQL
(or a Lambda) on Redshift.
"""

from __future__ import annotations

from sparkify.normalize import ASCII_WHITESPACE, MAX_REPAIR_ROUNDS, WHITESPACE
from sparkify.staging import REDSHIFT, VARCHAR_MAX, SqlDialect, lit

TEXT_REPAIR = "f_sparkify_repair"
TEXT_CLEAN = "f_sparkify_clean"
TEXT_KEY = "f_sparkify_key"
"""The text functions the shared SQL calls for non-ASCII values: one round of normalize.repair_mojibake,
then normalize.clean_repaired / key_repaired."""


def bare(a: str, whitespace: str = ASCII_WHITESPACE) -> str:
    """normalize.clean_text for ASCII text: trim `whitespace`, drop one pair of wrapping quotes, trim, '' is NULL.

    The fast path trims normalize.ASCII_WHITESPACE; Redshift's own text function (no Unicode
    normalisation there) trims all of normalize.WHITESPACE.
    """
    t = f"BTRIM({a}, {lit(whitespace)})"
    return (f"CASE WHEN LENGTH({t}) >= 2 AND LEFT({t}, 1) = '\"' AND RIGHT({t}, 1) = '\"' "
            f"THEN NULLIF(BTRIM(SUBSTRING({t}, 2, LENGTH({t}) - 2), {lit(whitespace)}), '') ELSE NULLIF({t}, '') END")


def non_ascii(a: str) -> str:
    return f"OCTET_LENGTH({a}) <> LENGTH({a})"


def repaired(a: str) -> str:
    """normalize.repair_mojibake: its rounds, each one call of the one-round function.

    Composed here rather than inside a function: no UDF of ours calls another,
    so nothing depends on whether Redshift lets a SQL UDF call a SQL UDF.
    """
    for _ in range(MAX_REPAIR_ROUNDS):
        a = f"{TEXT_REPAIR}({a})"
    return a


def clean(a: str) -> str:
    """A stored text value: the ASCII rules in SQL, repair and the text function for the rest."""
    return f"CASE WHEN {non_ascii(a)} THEN {TEXT_CLEAN}({repaired(a)}) ELSE {bare(a)} END"


def key(a: str) -> str:
    """The match key of a cleaned value: lower-case ASCII in SQL, repair and the text function for the rest.

    The repair runs again on a cleaned value, as normalize.match_key(clean_text(x)) does in the engines.
    """
    return f"CASE WHEN {non_ascii(a)} THEN {TEXT_KEY}({repaired(a)}) ELSE LOWER({a}) END"


LATIN1 = "".join(map(chr, range(0x80, 0x100)))
MARKERS = "".join(map(chr, range(0x1200, 0x1280)))
"""U+0080-U+00FF and the characters TRANSLATE turns them into: U+1200-U+123F are E1 88 80-BF in UTF-8,
U+1240-U+127F are E1 89 80-BF, so each marker's last byte is its Latin-1 byte (U+0080-U+00BF) or that
byte less 0x40 (U+00C0-U+00FF)."""

LATIN1_HEX = "^([0-7][0-9a-f]|c[23][89ab][0-9a-f])*$"
"""UTF-8 as hex pairs in which every character is U+0000-U+00FF: a round's first condition."""

UTF8_HEX = ("^([0-7][0-9a-f]|c[2-9a-f][89ab][0-9a-f]|d[0-9a-f][89ab][0-9a-f]"
            "|e0[ab][0-9a-f][89ab][0-9a-f]|e[1-9a-cef][89ab][0-9a-f][89ab][0-9a-f]|ed[89][0-9a-f][89ab][0-9a-f]"
            "|f0[9ab][0-9a-f]([89ab][0-9a-f]){2}|f[1-3]([89ab][0-9a-f]){3}|f48[0-9a-f]([89ab][0-9a-f]){2})*$")
"""Hex pairs that are valid UTF-8 as Python decodes it (no overlong forms, surrogates or code points
above U+10FFFF): a round's second condition, and what keeps FROM_VARBYTE(..., 'utf8') from invalid bytes."""

REPAIR_MAX_BYTES = 21845
"""Longest value a round handles: its widest intermediate (the hex of the marked text) is 3 characters per
byte, and Redshift's VARCHAR stops at 65,535. Longer values are left as they are (docs/redshift.md)."""


def _utf8_hex(a: str) -> str:
    return f"LOWER(FROM_VARBYTE(TO_VARBYTE({a}, 'utf8'), 'hex'))"


def latin1_hex(a: str) -> str:
    """The Latin-1 bytes of a text of U+0000-U+00FF characters, as lower-case hex.

    Its UTF-8 hex cannot be rewritten pair by pair with REPLACE: a pattern
    such as 'c3a3' (ã) also matches across pairs ('4c' '3a' '3.': 'L:' and a digit), and Redshift
    has no position-aware replacement that PostgreSQL shares. So each
    non-ASCII character first becomes a three-byte marker (MARKERS), whose
    hex 'e1 88 xy' / 'e1 89 xy' no pattern below can match out of step: read
    from an odd position, 'e188'/'e189' would be the ASCII byte 0x18
    followed by a continuation byte, which valid UTF-8 never holds. The
    patterns write upper case, which no later pattern matches.
    """
    h = _utf8_hex(f"TRANSLATE({a}, {lit(LATIN1)}, {lit(MARKERS)})")
    for nibble, latin in zip("89ab", "CDEF"):
        h = f"REPLACE({h}, 'e189{nibble}', '{latin}')"
    return f"LOWER(REPLACE({h}, 'e188', ''))"


def repair_round(a: str) -> str:
    """One round of normalize.repair_mojibake: applied only when every character is U+0000-U+00FF and
    the Latin-1 bytes are valid UTF-8, else the text is returned as it is."""
    m = latin1_hex(a)
    return (f"CASE WHEN OCTET_LENGTH({a}) <= {REPAIR_MAX_BYTES} AND {_utf8_hex(a)} ~ {lit(LATIN1_HEX)} "
            f"AND {m} ~ {lit(UTF8_HEX)} THEN FROM_VARBYTE(TO_VARBYTE({m}, 'hex'), 'utf8') ELSE {a} END")


def postgres_shims() -> list[str]:
    """Redshift's TO_VARBYTE and FROM_VARBYTE on PostgreSQL, for the formats the repair uses.

    With them the Redshift repair function runs unchanged on PostgreSQL:
    convert_from raises on invalid UTF-8, so a run here also shows the
    repair never hands FROM_VARBYTE(..., 'utf8') bytes that are not UTF-8.
    SQL functions, so that PostgreSQL can inline them; another format
    gives NULL, so no round would ever apply (the tests would show it).
    """
    return [
        "CREATE OR REPLACE FUNCTION to_varbyte (a text, format text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$ "
        "SELECT CASE lower(format) WHEN 'utf8' THEN convert_to(a, 'UTF8') WHEN 'hex' THEN decode(a, 'hex') END $$",
        "CREATE OR REPLACE FUNCTION from_varbyte (b bytea, format text) RETURNS text LANGUAGE sql IMMUTABLE STRICT "
        "AS $$ "
        "SELECT CASE lower(format) WHEN 'hex' THEN encode(b, 'hex') WHEN 'utf8' THEN convert_from(b, 'UTF8') END $$",
    ]


def json_functions() -> list[str]:
    """Redshift's built-in IS_VALID_JSON and IS_VALID_JSON_ARRAY, on PostgreSQL."""
    return [
        """CREATE OR REPLACE FUNCTION is_valid_json (a text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN json_typeof(a::json) = 'object';
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$""",
        """CREATE OR REPLACE FUNCTION is_valid_json_array (a text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN json_typeof(a::json) = 'array';
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$""",
    ]


def repair_function() -> str:
    """The one-round repair as a Redshift SQL UDF (one SELECT expression, no FROM); the same text runs on
    PostgreSQL once postgres_shims are in place."""
    return (f"CREATE OR REPLACE FUNCTION {TEXT_REPAIR} (VARCHAR) RETURNS {VARCHAR_MAX} IMMUTABLE AS $$ "
            f"SELECT {repair_round('$1')} $$ LANGUAGE sql")


def text_functions(dialect: SqlDialect, lambda_name: str | None = None, iam_role: str | None = None) -> list[str]:
    """The functions the shared SQL calls, defined for one warehouse.

    Both get the repair as the Redshift SQL UDF (repair_function). After
    it, PostgreSQL has the rest of normalize.clean_text in PL/pgSQL (NFC,
    trim, unquote) and the two JSON tests Redshift has built in; Redshift
    has SQL functions that trim every whitespace character and unquote but
    neither normalise (it has no NFC) nor case-fold beyond LOWER, or with
    `lambda_name` a Lambda UDF running
    normalize.clean_repaired / key_repaired (targets/redshift/lambda_udf.py),
    which adds NFC and Python's casefold.
    """
    if dialect is REDSHIFT and lambda_name:
        assert iam_role, "a Lambda UDF needs the IAM role that may invoke it"
        return [repair_function()] + [
            f"CREATE OR REPLACE EXTERNAL FUNCTION {name} (VARCHAR) RETURNS {VARCHAR_MAX} STABLE "
            f"LAMBDA {lit(lambda_name)} IAM_ROLE {lit(iam_role)}"
            for name in (TEXT_CLEAN, TEXT_KEY)
        ]
    if dialect is REDSHIFT:
        return [
            repair_function(),
            f"CREATE OR REPLACE FUNCTION {TEXT_CLEAN} (VARCHAR) RETURNS {VARCHAR_MAX} IMMUTABLE AS $$ "
            f"SELECT {bare('$1', WHITESPACE)} $$ LANGUAGE sql",
            f"CREATE OR REPLACE FUNCTION {TEXT_KEY} (VARCHAR) RETURNS {VARCHAR_MAX} IMMUTABLE AS $$ "
            f"SELECT LOWER({bare('$1', WHITESPACE)}) $$ LANGUAGE sql",
        ]
    return postgres_shims() + [
        repair_function(),
        f"""CREATE OR REPLACE FUNCTION {TEXT_CLEAN} (a text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := btrim(normalize(a, NFC), {lit(WHITESPACE)});
BEGIN
    IF length(t) >= 2 AND left(t, 1) = '"' AND right(t, 1) = '"' THEN
        t := btrim(substr(t, 2, length(t) - 2), {lit(WHITESPACE)});
    END IF;
    RETURN nullif(t, '');
END $$""",
        f"CREATE OR REPLACE FUNCTION {TEXT_KEY} (a text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ "
        f"SELECT lower({TEXT_CLEAN}(a)) $$",
    ] + json_functions()
