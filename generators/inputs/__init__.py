"""Hard inputs for a given classifier (adversarial, fooling, ambiguous, corrupted) and the
supervisors that should flag them; every model enters through `adapter.adapt`."""
