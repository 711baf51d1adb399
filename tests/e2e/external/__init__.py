"""A team's own code for the external pool tests: job types that the pool's worker (a
separate process, with no access to Draconic's database) runs."""
