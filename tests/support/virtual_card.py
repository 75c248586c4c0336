"""A virtual contactless card for the PC/SC test rig: an ISO 7816 card from vsmartcard that answers GET DATA.

Run by Debian's /usr/bin/python3 (python3-virtualsmartcard lives there, not in the project's venv):

    /usr/bin/python3 tests/support/virtual_card.py 04A2B3C4D5E6F7 [--no-uid] [--port 35963]

It connects to vpcd (pcscd's virtual reader driver; port 35963 is reader 'Virtual PCD 00 00') and serves
APDUs until it is killed: the card is in the reader while this process runs and removed when it ends.
The one addition to vsmartcard's ISO 7816 card is the PC/SC pseudo-APDU GET DATA (FF CA 00 00 00),
answered with the UID and 90 00, or with 6A 81 (function not supported) under --no-uid.
"""

import argparse
import logging
import sys

# Debian installs the package outside the interpreter's path, one level down.
sys.path.insert(0, "/usr/lib/python3/site-packages/virtualsmartcard")
try:
    import Crypto  # noqa: F401 - only probing whether PyCrypto's name exists
except ImportError:
    # Debian 12's python3-virtualsmartcard imports `Crypto`, but python3-pycryptodome installs `Cryptodome`.
    import Cryptodome
    import Cryptodome.Cipher
    import Cryptodome.Hash

    sys.modules["Crypto"] = Cryptodome
    sys.modules["Crypto.Cipher"] = Cryptodome.Cipher
    sys.modules["Crypto.Hash"] = Cryptodome.Hash

# Importable only once the path and the alias above are in place.
from virtualsmartcard.VirtualSmartcard import Iso7816OS, VirtualICC

GET_DATA_UID = b"\xff\xca\x00\x00"
SW_OK = b"\x90\x00"
SW_FUNCTION_NOT_SUPPORTED = b"\x6a\x81"


def main() -> None:
    """Insert the card into the virtual reader and serve it until killed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uid", type=bytes.fromhex, help="the card's UID in hex, e.g. 04A2B3C4D5E6F7")
    parser.add_argument("--no-uid", action="store_true", help="answer GET DATA with 6A 81 instead of the UID")
    parser.add_argument("--port", type=int, default=35963, help="vpcd's port (35963 is 'Virtual PCD 00 00')")
    args = parser.parse_args()
    answer = SW_FUNCTION_NOT_SUPPORTED if args.no_uid else args.uid + SW_OK

    class UidOS(Iso7816OS):
        def execute(self, msg: bytes) -> bytes:
            if msg[:4] == GET_DATA_UID:
                return answer
            return super().execute(msg)

    icc = VirtualICC(None, "iso7816", "localhost", args.port, logginglevel=logging.WARNING)
    icc.os = UidOS(icc.os.mf, icc.os.SAM)
    icc.run()


if __name__ == "__main__":
    main()
