"""`make bench`: SecureShare beside a bare Flask page and snappass. Not collected by pytest (no test_ files)."""
