"""Pure cryptographic primitives on clear keys (the "hazmat" layer of the HSM).

The switch itself only reaches these through ``switch.hsm.SoftwareHsm``,
which keeps every key wrapped under the LMK. The terminal side (EPP emulator,
simulator, tests, load generator) holds its own clear keys and imports these
functions directly. Every function here is synchronous and side-effect free.
"""

from switch.hsm.primitives.aes import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_ecb_decrypt,
    aes_ecb_encrypt,
)
from switch.hsm.primitives.cvv import cvv
from switch.hsm.primitives.des import (
    adjust_odd_parity,
    des_ecb_decrypt,
    des_ecb_encrypt,
    expand_tdes_key,
    has_odd_parity,
    tdes_cbc_decrypt,
    tdes_cbc_encrypt,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
    xor_bytes,
)
from switch.hsm.primitives.emv import (
    application_cryptogram,
    arpc_method1,
    arpc_method2,
    atc_diversification,
    derive_common_session_key,
    derive_icc_master_key_option_a,
    session_key_for_atc,
)
from switch.hsm.primitives.errors import (
    DataLengthError,
    DukptError,
    EmvDataError,
    KeyBlockError,
    KeyLengthError,
    PinFormatError,
    PrimitiveError,
)
from switch.hsm.primitives.kcv import kcv_aes, kcv_aes_legacy, kcv_tdes
from switch.hsm.primitives.keys import random_aes_key, random_tdes_key
from switch.hsm.primitives.mac import aes_cmac, retail_mac, tdes_cmac
from switch.hsm.primitives.pin_blocks import (
    decrypt_pin_block,
    encrypt_pin_block,
    pin_block_format0,
    pin_block_format1,
    pin_block_format3,
)
from switch.hsm.primitives.pin_verification import (
    ibm3624_offset,
    ibm3624_pin_from_offset,
    ibm3624_validation_data,
    visa_pvv,
)
from switch.hsm.primitives.tr31 import Tr31Header, tr31_unwrap, tr31_wrap

__all__ = [
    "DataLengthError",
    "DukptError",
    "EmvDataError",
    "KeyBlockError",
    "KeyLengthError",
    "PinFormatError",
    "PrimitiveError",
    "Tr31Header",
    "adjust_odd_parity",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "aes_cmac",
    "aes_ecb_decrypt",
    "aes_ecb_encrypt",
    "application_cryptogram",
    "arpc_method1",
    "arpc_method2",
    "atc_diversification",
    "cvv",
    "decrypt_pin_block",
    "derive_common_session_key",
    "derive_icc_master_key_option_a",
    "des_ecb_decrypt",
    "des_ecb_encrypt",
    "encrypt_pin_block",
    "expand_tdes_key",
    "has_odd_parity",
    "ibm3624_offset",
    "ibm3624_pin_from_offset",
    "ibm3624_validation_data",
    "kcv_aes",
    "kcv_aes_legacy",
    "kcv_tdes",
    "pin_block_format0",
    "pin_block_format1",
    "pin_block_format3",
    "random_aes_key",
    "random_tdes_key",
    "retail_mac",
    "session_key_for_atc",
    "tdes_cbc_decrypt",
    "tdes_cbc_encrypt",
    "tdes_cmac",
    "tdes_ecb_decrypt",
    "tdes_ecb_encrypt",
    "tr31_unwrap",
    "tr31_wrap",
    "visa_pvv",
    "xor_bytes",
]
