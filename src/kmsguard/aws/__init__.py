"""Everything that talks to AWS goes through here: options, the session factory, errors."""
