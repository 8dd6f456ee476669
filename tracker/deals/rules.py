"""The rules of DOMAIN.md's event table that depend on the deal's state. Pure, Django-free.

Rules within one event (shares sum to 100, earmarks in the allocation's currency, >= 2 MoU
parties, ...) live in the catalogue's schemas; whether organisations exist is asked of the
database by the services. What is left needs the current state, and is checked here by the
services' dry run before anything is appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from .errors import FieldError, InvalidEvent
from .events import (
    FINAL_STAGES,
    META_TYPES,
    ContractAwarded,
    DealOpened,
    DeliveryRecorded,
    EventData,
    FactCorrected,
    FactRetracted,
    JointVentureFormed,
    MouSigned,
    PartyAdded,
    PartyRemoved,
    parse_data,
)
from .reducer import Deal, EventLike

ALLOWED_AFTER_FINAL = ("NoteAdded", "FactCorrected", "FactRetracted")


def check(
    deal: Deal | None,
    event_type: str,
    data: EventData,
    *,
    history: Mapping[UUID, EventLike],
    prefix: str = "",
    correcting: bool = False,
    corrected_id: UUID | None = None,
) -> list[FieldError]:
    """What is wrong with appending this event to a deal now in `deal` (empty: nothing).

    `history` holds the stream's events by id (for retractions and corrections); `prefix` is put
    before every field name ("events[2]." in a batch). With `correcting`, `data` is the new
    data of an earlier fact of `event_type` and `deal` the state without that fact: the fact's
    own rules apply, not those about when facts may be appended (a finished deal's facts may
    still be corrected). `corrected_id` is then the id of that fact.
    """
    found: list[FieldError] = []

    def error(field: str, message: str) -> None:
        found.append(FieldError(prefix + field, message))

    if event_type == "DealOpened":
        if history and not correcting:
            error("type", "DealOpened must be the first event of a deal, and only there")
        return found
    if deal is None:
        error("type", "the deal has no state yet: its first event must be DealOpened")
        return found
    if deal.stage in FINAL_STAGES and event_type not in ALLOWED_AFTER_FINAL and not correcting:
        error(
            "type",
            f"the deal is {deal.stage}: only corrections, retractions and notes may follow",
        )
        return found
    parties = deal.party_ids()
    if isinstance(data, PartyAdded) and data.organisation in parties:
        error("data.organisation", "the organisation is already a party to the deal")
    elif isinstance(data, PartyRemoved) and data.organisation not in parties:
        error("data.organisation", "the organisation is not a party to the deal")
    elif isinstance(data, MouSigned):
        for index, organisation in enumerate(data.parties):
            if organisation not in parties:
                error(f"data.parties[{index}]", "every MoU party must be a party to the deal")
    elif isinstance(data, JointVentureFormed):
        for index, share in enumerate(data.shares):
            if share.organisation not in parties:
                error(
                    f"data.shares[{index}].organisation",
                    "every shareholder must be a party to the deal",
                )
    elif isinstance(data, DeliveryRecorded):
        found.extend(_check_delivery(deal, data, history, prefix))
    elif isinstance(data, ContractAwarded) and correcting and data.quantity is not None:
        delivered = sum(d.year.quantity for d in deal.unplaced if d.contract == corrected_id)
        if delivered > data.quantity:
            error(
                "data.quantity",
                f"{delivered} items are recorded as delivered under this contract, more than "
                f"{data.quantity}",
            )
    elif isinstance(data, FactRetracted | FactCorrected):
        found.extend(_check_target(deal, event_type, data, history, prefix))
    return found


def _check_delivery(
    deal: Deal, data: DeliveryRecorded, history: Mapping[UUID, EventLike], prefix: str
) -> list[FieldError]:
    field = prefix + "data.contract"
    target = history.get(data.contract)
    if target is None or target.type != "ContractAwarded":
        return [FieldError(field, "no ContractAwarded with this id in this deal")]
    if data.contract in deal.retracted:
        return [FieldError(field, "that contract is retracted")]
    contract = next((c for c in deal.contracts if c.id == data.contract), None)
    if contract is None or contract.ordered is None:
        return []
    total = contract.delivered + data.quantity
    if total > contract.ordered:
        return [
            FieldError(
                prefix + "data.quantity",
                f"would bring the deliveries under this contract to {total}, more than the "
                f"{contract.ordered} ordered ({contract.delivered} delivered so far)",
            )
        ]
    return []


def _check_target(
    deal: Deal,
    event_type: str,
    data: FactRetracted | FactCorrected,
    history: Mapping[UUID, EventLike],
    prefix: str,
) -> list[FieldError]:
    field = prefix + "data.event_id"
    target = history.get(data.event_id)
    if target is None:
        return [FieldError(field, "no event with this id in this deal")]
    if data.event_id in deal.retracted:
        return [FieldError(field, "that event is already retracted")]
    if event_type == "FactRetracted":
        if target.type == "FactRetracted":
            return [FieldError(field, "a retraction cannot itself be retracted")]
        if target.type == "DealOpened":
            return [FieldError(field, "DealOpened cannot be retracted; correct it instead")]
        return []
    if target.type in META_TYPES:
        return [FieldError(field, f"a {target.type} cannot be corrected; retract it instead")]
    assert isinstance(data, FactCorrected)
    if data.data is not None:
        try:
            corrected = parse_data(target.type, data.data, prefix=prefix + "data.data")
        except InvalidEvent as invalid:
            return invalid.errors
        if isinstance(corrected, DealOpened) and tuple(corrected.external_ids) != (
            deal.external_ids
        ):
            # Registers' keys are what their imports find a deal by; a client sets none when
            # it opens a deal, and may not claim one (or drop one) by correcting the opening.
            kept = ", ".join(deal.external_ids) or "none"
            return [
                FieldError(
                    prefix + "data.data.external_ids",
                    f"a correction keeps the deal's register keys as they are ({kept})",
                )
            ]
    return []


def check_outcome(before: Deal | None, after: Deal | None, *, field: str) -> list[FieldError]:
    """What is wrong with the state the new events leave, whichever way they got there.

    `check` judges each new event as folded last. A retraction can also bring back what a
    correction it retracts had replaced (an ordered quantity the correction had raised), so
    the state after is judged too. Only what the new events broke is named, at `field`: a
    state that was already so when these checks came in is left to its own corrections.
    """
    if after is None:
        return []
    earlier = {contract.id: contract for contract in before.contracts} if before else {}
    found = []
    for contract in after.contracts:
        if contract.ordered is None or contract.delivered <= contract.ordered:
            continue
        was = earlier.get(contract.id)
        if was is not None and was.ordered is not None and was.delivered > was.ordered:
            continue
        found.append(
            FieldError(
                field,
                f"would leave {contract.delivered} items delivered under contract "
                f"{contract.id}, more than the {contract.ordered} ordered",
            )
        )
    return found
