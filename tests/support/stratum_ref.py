"""Reference Stratum maths for the test programs, independent of hashing/.

Every hash here is OpenSSL's, through Python's hashlib: SHA-256 for sha256d
and EVP_PBE_scrypt for scrypt(1024, 1, 1).
"""
import hashlib
import struct

DIFF1 = {"sha256d": 0xFFFF << 208, "scrypt": 0xFFFF << 224}


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def scrypt_pow(header: bytes) -> bytes:
    return hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32)


def pow_hash(algorithm: str, header: bytes) -> bytes:
    return scrypt_pow(header) if algorithm == "scrypt" else sha256d(header)


def target_for(algorithm: str, difficulty: float) -> int:
    # The same float arithmetic pools use: diff1 / difficulty, truncated.
    return int(DIFF1[algorithm] / difficulty)


def hash_value(h: bytes) -> int:
    return int.from_bytes(h, "little")


def compact_to_target(nbits: int) -> int:
    exponent, mantissa = nbits >> 24, nbits & 0x7FFFFF
    return mantissa << (8 * (exponent - 3)) if exponent >= 3 else mantissa >> (8 * (3 - exponent))


def merkle_root(coinbase: bytes, branch_hex) -> bytes:
    root = sha256d(coinbase)
    for node in branch_hex:
        root = sha256d(root + bytes.fromhex(node))
    return root


def swap_words(prevhash_hex: str) -> bytes:
    raw = bytes.fromhex(prevhash_hex)
    return b"".join(raw[i:i + 4][::-1] for i in range(0, 32, 4))


def header_prefix(version: int, prevhash_hex: str, root: bytes, ntime: int, nbits: int) -> bytes:
    """The first 76 bytes of the header; the nonce (LE) completes it."""
    return struct.pack("<I", version) + swap_words(prevhash_hex) + root + struct.pack("<II", ntime, nbits)


def build_header(job, extranonce1: bytes, extranonce2: bytes, ntime: int, nonce: int, version: int) -> bytes:
    coinbase = bytes.fromhex(job["coinb1"]) + extranonce1 + extranonce2 + bytes.fromhex(job["coinb2"])
    root = merkle_root(coinbase, job["merkle_branch"])
    return header_prefix(version, job["prevhash"], root, ntime, int(job["nbits"], 16)) + struct.pack("<I", nonce)
