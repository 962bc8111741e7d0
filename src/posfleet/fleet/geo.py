"""Distances on the Earth for device health (relocation, 移机). Pure Python: no ORM, no Django settings.

Coordinates are WGS-84 degrees (what a device's GNSS fix and the stores' coordinates are in). The
distance is the haversine great-circle distance on a sphere of the IUGG mean Earth radius: within
0.5 % of the ellipsoidal (geodesic) distance, far better than a phone's fix and the 2 km a relocation
is measured against. Note that maps of mainland China often show GCJ-02 ("Mars") coordinates, offset
from WGS-84 by a few hundred metres: enter a store's coordinates in WGS-84.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius R1 = (2a + b) / 3
PLACES = Decimal("0.000001")  # six decimal places of a degree: 0.11 m, what the database keeps


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two WGS-84 points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_m(
    lat1: float | Decimal, lon1: float | Decimal, lat2: float | Decimal, lon2: float | Decimal
) -> int:
    """``haversine_m`` rounded to the whole metre (what an alert keeps and a page shows)."""
    return round(haversine_m(float(lat1), float(lon1), float(lat2), float(lon2)))


def degrees(value: float | Decimal) -> Decimal:
    """A coordinate as the database keeps it: a Decimal of six places, rounded half up."""
    return Decimal(str(value)).quantize(PLACES, rounding=ROUND_HALF_UP)
