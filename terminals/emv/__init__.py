"""EMV on the terminal side: BER-TLV, APDUs, and the little of an EMV kernel an ATM needs."""
