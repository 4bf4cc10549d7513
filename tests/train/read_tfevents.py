#!/usr/bin/python3
"""Independent reader for TensorBoard event files, written from the format specs only.

TFRecord framing: uint64 length (LE), uint32 masked CRC-32C of the 8 length bytes, data,
uint32 masked CRC-32C of data; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32).
Data: a tensorflow.Event protobuf (wall_time=1 double, step=2 int64, file_version=3 string,
summary=5 Summary{ value=1 repeated Value{ tag=1 string, simple_value=2 float } }).

usage: read_tfevents.py FILE  -> prints one JSON object per event; exits 1 on any corruption.
"""
import json
import struct
import sys


def crc32c(data):
    # Bitwise CRC-32C (Castagnoli), reflected polynomial 0x82F63B78: slow but obviously right.
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def fields(buf):
    """Yields (field_number, wire_type, value) for one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        if i > len(buf):
            raise ValueError("truncated protobuf")
        yield num, wt, v


def decode_event(buf):
    ev = {}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif num == 2 and wt == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3 and wt == 2:
            ev["file_version"] = v.decode()
        elif num == 5 and wt == 2:
            values = []
            for snum, swt, sv in fields(v):
                assert snum == 1 and swt == 2, "Summary has only `value` (1)"
                val = {}
                for vnum, vwt, vv in fields(sv):
                    if vnum == 1 and vwt == 2:
                        val["tag"] = vv.decode()
                    elif vnum == 2 and vwt == 5:
                        val["simple_value"] = struct.unpack("<f", vv)[0]
                values.append(val)
            ev["summary"] = values
        else:
            raise ValueError("unexpected Event field %d (wire type %d)" % (num, wt))
    return ev


def main(path):
    data = open(path, "rb").read()
    i = 0
    while i < len(data):
        if i + 12 > len(data):
            raise ValueError("truncated record header at %d" % i)
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hcrc != masked(header):
            raise ValueError("bad length CRC at %d" % i)
        body = data[i + 12:i + 12 + n]
        if len(body) != n or i + 16 + n > len(data):
            raise ValueError("truncated record at %d" % i)
        (dcrc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if dcrc != masked(body):
            raise ValueError("bad data CRC at %d" % i)
        print(json.dumps(decode_event(body)))
        i += 16 + n


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (ValueError, AssertionError, IndexError, struct.error) as e:
        print("read_tfevents: %s" % e, file=sys.stderr)
        sys.exit(1)
