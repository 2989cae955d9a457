"""What every admin handler works with: the database, the HSM, the custody box, limits."""

from __future__ import annotations

from dataclasses import dataclass

from switch.admin.custody import CustodyBox
from switch.db.runtime import Database
from switch.hsm.software import SoftwareHsm


@dataclass(frozen=True, slots=True)
class AdminContext:
    db: Database
    hsm: SoftwareHsm
    custody: CustodyBox
    secure_cookies: bool = True  # console cookies need HTTPS (a TLS proxy in front)
    approval_window_s: float = 15 * 60.0  # the second person has this long to approve
