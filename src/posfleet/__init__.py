"""posfleet: the back office for the whole life of card-payment (POS) terminals."""

__version__ = "0.1.0"
