-- What a person sees in their list of sign-ins: the browser and system a
-- session or an API sign-in came from ("Firefox on Linux"), derived from
-- its User-Agent when it began. Not something a person typed.
ALTER TABLE sessions ADD COLUMN device TEXT;
ALTER TABLE token_families ADD COLUMN device TEXT;
ALTER TABLE token_families ADD COLUMN ip TEXT;
