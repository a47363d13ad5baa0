"""The held-out relations set's flights and clinic schemas (see relations_set.py)."""

from __future__ import annotations

import random

from heldout.relations_kit import Schema, codes, ids, money, refs, small, table, words


def air(rng: random.Random) -> Schema:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    carriers = [
        "9E",
        "AA",
        "AS",
        "B6",
        "DL",
        "EV",
        "F9",
        "FL",
        "HA",
        "MQ",
        "OO",
        "UA",
        "US",
        "VX",
        "WN",
        "YV",
    ]
    airports = codes(rng, 1400, lambda r: "".join(r.choice(letters) for _ in range(3)))
    nyc = ["EWR", "JFK", "LGA"]
    airports = nyc + [a for a in airports if a not in nyc][:1397]
    planes = codes(
        rng, 3300, lambda r: f"N{r.randint(100, 999)}{r.choice(letters)}{r.choice(letters)}"
    )
    n = 15000
    foreign = [
        "BQN",
        "SJU",
        "STT",
        "PSE",
    ]  # flown to, missing from the airports table (as in nycflights13)
    dests = [
        rng.choice(foreign) if rng.random() < 0.018 else x for x in refs(rng, airports[3:200], n)
    ]
    tails = refs(rng, planes, n, nulls=0.02, orphans=0.021)
    tables = [
        table(
            "airlines",
            "carrier",
            carrier=("text", carriers),
            name=("text", [f"Air {c}" for c in carriers]),
        ),
        table("airports", "faa", faa=("text", airports), alt=("bigint", small(rng, 0, 9000, 1400))),
        table(
            "planes",
            "tailnum",
            tailnum=("text", planes),
            year=("bigint", small(rng, 1960, 2013, 3300)),
            seats=("bigint", small(rng, 2, 450, 3300)),
        ),
        table(
            "flights",
            None,
            id=("bigint", list(range(1, n + 1))),
            carrier=("text", refs(rng, carriers, n)),
            flight=("bigint", small(rng, 1, 8500, n)),
            tailnum=("text", tails),
            origin=("text", words(rng, nyc, n)),
            dest=("text", dests),
            hour=("bigint", small(rng, 5, 23, n)),
        ),
        table(
            "weather",
            None,
            origin=("text", words(rng, nyc, 2600)),
            year=("bigint", [2013] * 2600),
            month=("bigint", small(rng, 1, 12, 2600)),
            temp=("double", money(rng, 2600, 10, 100)),
        ),
    ]
    s = "air"
    truth = {
        (s, "flights", "carrier", "airlines", "carrier"),
        (s, "flights", "tailnum", "planes", "tailnum"),  # about 97.9% covered, as in nycflights13
        (s, "flights", "origin", "airports", "faa"),
        (s, "flights", "dest", "airports", "faa"),  # about 98% covered
        (s, "weather", "origin", "airports", "faa"),
    }
    return Schema(s, tables, truth)


def clinic(rng: random.Random) -> Schema:
    patients = ids(rng, 2000)
    npis = codes(rng, 250, lambda r: "1" + "".join(str(r.randint(0, 9)) for _ in range(9)))
    facilities = list(range(1, 13))
    encounters = ids(rng, 6000, start=100001)
    icd = codes(
        rng, 200, lambda r: f"{r.choice('EIJKMNRZ')}{r.randint(0, 99):02d}.{r.randint(0, 9)}"
    )
    ndc = codes(
        rng,
        300,
        lambda r: f"{r.randint(0, 99999):05d}-{r.randint(0, 9999):04d}-{r.randint(0, 99):02d}",
    )
    n = len(encounters)
    tables = [
        table(
            "patients",
            "patient_id",
            patient_id=("bigint", patients),
            zip=("text", [f"{rng.randint(10000, 99999)}" for _ in patients]),
        ),
        table(
            "providers",
            "npi",
            npi=("text", npis),
            specialty=("text", words(rng, ["FM", "IM", "PED", "CARD"], 250)),
        ),
        table(
            "facilities", None, id=("bigint", facilities), beds=("bigint", small(rng, 10, 600, 12))
        ),
        table(
            "encounters",
            None,
            encounter_id=("bigint", encounters),
            patient_id=("bigint", refs(rng, patients, n)),
            provider_npi=("text", refs(rng, npis, n)),
            facility_id=("bigint", refs(rng, facilities, n)),
            referred_by=("text", refs(rng, npis, n, nulls=0.6)),
            room_number=("bigint", small(rng, 100, 450, n)),
        ),
        table(
            "icd10_codes", None, code=("text", icd), description=("text", [f"dx {c}" for c in icd])
        ),
        table(
            "diagnoses",
            None,
            id=("bigint", ids(rng, 9000)),
            encounter_id=("bigint", refs(rng, encounters, 9000)),
            icd10_code=("text", refs(rng, icd, 9000)),
        ),
        table("drugs", None, ndc=("text", ndc), name=("text", [f"drug {d}" for d in ndc])),
        table(
            "prescriptions",
            None,
            id=("bigint", ids(rng, 4000)),
            encounter_id=("bigint", refs(rng, encounters, 4000)),
            drug_ndc=("text", refs(rng, ndc, 4000)),
            refills=("bigint", small(rng, 0, 5, 4000)),
        ),
    ]
    s = "clinic"
    truth = {
        (s, "encounters", "patient_id", "patients", "patient_id"),
        (s, "encounters", "provider_npi", "providers", "npi"),
        (s, "encounters", "facility_id", "facilities", "id"),
        (s, "encounters", "referred_by", "providers", "npi"),  # weakly named
        (s, "diagnoses", "encounter_id", "encounters", "encounter_id"),
        (s, "diagnoses", "icd10_code", "icd10_codes", "code"),
        (s, "prescriptions", "encounter_id", "encounters", "encounter_id"),
        (s, "prescriptions", "drug_ndc", "drugs", "ndc"),
    }
    return Schema(s, tables, truth)
