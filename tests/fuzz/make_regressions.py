#!/usr/bin/env python3
"""Writes the hostile inputs found so far (each one crashed, hung or misbehaved before it was
fixed) into tests/fuzz/regressions/<target>/, where CTest replays them in every build.
Inputs later found by the fuzzers are copied there as they are (crash-<sha1> files).

    python3 tests/fuzz/make_regressions.py      # standard library only; any python3

Files derived from a seed (a checkpoint with one bad optimizer tensor, ...) are made from the
seed corpus in tests/fuzz/corpus/, written by `fuzz_replay_<target> --write-seeds`.
"""
import json
import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "regressions")
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


# --- safetensors ------------------------------------------------------------------------------

def safetensors_raw(header_text, data=b""):
    header = header_text.encode()
    return struct.pack("<Q", len(header)) + header + data


def read_safetensors(path):
    """(header dict, {name: raw bytes}) of a file."""
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name != "__metadata__":
            begin, end = entry["data_offsets"]
            tensors[name] = (entry["dtype"], entry["shape"], data[begin:end])
    return header.get("__metadata__"), tensors


def write_safetensors(metadata, tensors):
    """Serialises (metadata, {name: (dtype, shape, raw bytes)}) in the given order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return safetensors_raw(json.dumps(header), data)


def with_tensor(seed, name, dtype, shape, raw):
    metadata, tensors = read_safetensors(os.path.join(CORPUS, seed))
    assert name in tensors, name
    tensors[name] = (dtype, shape, raw)
    return write_safetensors(metadata, tensors)


def f64(*values):
    return struct.pack("<%dd" % len(values), *values)


def i64(*values):
    return struct.pack("<%dq" % len(values), *values)


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


# Item 1: 100 000 levels of nested arrays in the header overflowed the parser's stack.
write("safetensors", "deep_nesting.safetensors", safetensors_raw("[" * 100000 + "]" * 100000))
write("safetensors", "deep_nesting_in_metadata.safetensors",
      safetensors_raw('{"__metadata__": {"a": ' + "[" * 100000 + "]" * 100000 + "}}"))
# Item 5: a shape whose element count is 0 but whose strides overflow int64.
write("safetensors", "huge_dims_zero_count.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F32", "shape": [0, 2**40, 2**40], "data_offsets": [0, 0]}})))
write("safetensors", "element_count_overflow.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F64", "shape": [2**31, 2**31, 2**3], "data_offsets": [0, 8]}}),
                      b"\0" * 8))
# Item 12: duplicate keys.
write("safetensors", "duplicate_keys.safetensors",
      safetensors_raw('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                      '"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', f32(1, 2)))
# Header length past the end, offsets reversed / overlapping / out of the file, a bool byte 2.
write("safetensors", "header_length_past_end.safetensors", struct.pack("<Q", 2**63 + 5) + b"{}")
write("safetensors", "offsets_reversed.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}), f32(1)))
write("safetensors", "offsets_past_end.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**62]}}), f32(1)))
write("safetensors", "bool_byte_2.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}), b"\x01\x02"))
write("safetensors", "negative_dim.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}), f32(1, 2, 3, 4)))
write("safetensors", "float_offsets.safetensors",
      safetensors_raw('{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0.5, 4.5]}}', f32(1, 2)))
write("safetensors", "huge_number_in_header.safetensors",
      safetensors_raw('{"t": {"dtype": "F32", "shape": [1e999], "data_offsets": [0, 4]}}', f32(1)))

# --- npy --------------------------------------------------------------------------------------

def npy(header_dict_text, data=b"", version=1):
    text = header_dict_text
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + data
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text.encode() + data


# Item 2: std::regex recursed once per character of a long descr.
write("npy", "long_descr.npy", npy("{'descr': '<" + "f" * 30000 + "', 'fortran_order': False, 'shape': (1,), }", f32(1)))
write("npy", "negative_dim.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 2), }", f32(*range(6))))
write("npy", "float_dim.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", f32(*range(10))))
write("npy", "key_inside_string.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'note': \"'shape': (2,)\", }", f32(1)))
# Item 3: bool bytes other than 0 and 1.
write("npy", "b1_byte_2.npy", npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", b"\x00\x01\x02"))
write("npy", "fortran_order.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f32(1, 2, 3, 4)))
write("npy", "shape_overflow.npy",
      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", f64(1)))
write("npy", "huge_dim_text.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "9" * 400 + ",), }", f32(1)))
write("npy", "v2_header_length_past_end.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{")
write("npy", "big_endian.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", f32(1)))

# Empty arrays with a huge outer extent (74 bytes) made sum() take time and memory
# proportional to the extent; 20 000 dimensions were accepted.
write("safetensors", "empty_huge_outer.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F32", "shape": [500000000, 0, 0], "data_offsets": [0, 0]}})))
write("safetensors", "empty_huge_outer_2_40.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "I64", "shape": [2**40, 0, 3], "data_offsets": [0, 0]}})))
write("safetensors", "too_many_dims.safetensors",
      safetensors_raw(json.dumps({"t": {"dtype": "F32", "shape": [1] * 20000, "data_offsets": [0, 4]}}), f32(1)))
write("npy", "empty_huge_outer.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (500000000, 0, 0), }"))
write("npy", "empty_huge_outer_2_40.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 0, 5), }"))
write("npy", "too_many_dims.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "1," * 20000 + "), }", f32(1)))

# --- optimizer and scheduler state (item 11, item 8) -------------------------------------------

write("optimizer_state", "adam_step_negative.safetensors",
      with_tensor("optimizer_state/adam.safetensors", "state.0.step", "I64", [], i64(-1)))
write("optimizer_state", "adam_exp_avg_sq_negative.safetensors",
      with_tensor("optimizer_state/adam.safetensors", "state.1.exp_avg_sq", "F32", [3], f32(-1, 0.5, 0.25)))
write("optimizer_state", "adam_lr_inf.safetensors",
      with_tensor("optimizer_state/adam.safetensors", "param_groups.0.lr", "F64", [], f64(math.inf)))
write("optimizer_state", "adam_params_f32_ids.safetensors",
      with_tensor("optimizer_state/adam.safetensors", "param_groups.0.params", "F32", [2], f32(0, 1)))
write("optimizer_state", "adam_param_id_out_of_range.safetensors",
      with_tensor("optimizer_state/adam.safetensors", "param_groups.0.params", "I64", [2], i64(0, 2**62)))
write("optimizer_state", "adam_state_wrong_shape.safetensors",
      with_tensor("optimizer_state/adam.safetensors", "state.0.exp_avg", "F32", [3, 2], f32(*range(6))))
write("optimizer_state", "sgd_momentum_nan.safetensors",
      with_tensor("optimizer_state/sgd.safetensors", "param_groups.0.momentum", "F64", [], f64(math.nan)))

write("scheduler_state", "last_epoch_empty.safetensors",
      with_tensor("scheduler_state/step.safetensors", "last_epoch", "I64", [0], b""))
write("scheduler_state", "last_epoch_nan_f64.safetensors",
      with_tensor("scheduler_state/step.safetensors", "last_epoch", "F64", [], f64(math.nan)))
write("scheduler_state", "last_epoch_huge_f64.safetensors",
      with_tensor("scheduler_state/step.safetensors", "last_epoch", "F64", [], f64(1e300)))
write("scheduler_state", "last_epoch_max.safetensors",
      with_tensor("scheduler_state/step.safetensors", "last_epoch", "I64", [], i64(2**63 - 1)))
write("scheduler_state", "plateau_num_bad_epochs_negative.safetensors",
      with_tensor("scheduler_state/plateau.safetensors", "num_bad_epochs", "I64", [], i64(-2**63)))

# --- checkpoint (item 10: a bad optimizer tensor must leave the model untouched) ----------------

write("checkpoint", "bad_optimizer_tensor.safetensors",
      with_tensor("checkpoint/after_one_step.safetensors", "optimizer.state.3.exp_avg", "F32", [15], f32(*range(15))))
write("checkpoint", "bad_scheduler_tensor.safetensors",
      with_tensor("checkpoint/after_one_step.safetensors", "scheduler.last_epoch", "I64", [0], b""))
_meta, _tensors = read_safetensors(os.path.join(CORPUS, "checkpoint/after_one_step.safetensors"))
_meta["xgrad.rng_state"] = "1 2 3"
write("checkpoint", "bad_rng_state.safetensors", write_safetensors(_meta, _tensors))

# --- text formats -----------------------------------------------------------------------------

write("json_records", "number_out_of_range.json", '[{"a": 1e999, "text": "x", "class": 1}]')
write("json_records", "deep_nesting.json", "[" * 100000 + "]" * 100000)
write("json_records", "deep_nesting_in_record.json", '[{"text": "x", "class": ' + "[" * 100000 + "]" * 100000 + "}]")
write("json_records", "invalid_utf8.json", b'[{"text": "\xff\xfe", "class": 1}]')
write("csv", "unterminated_quote.csv", 'a,b\n"1,2\n')
write("csv", "ragged.csv", "a,b\n1\n1,2,3\n")
write("csv", "nul_bytes.csv", b"a\x00,b\n1,\x002\n")
write("csv", "number_out_of_range.csv", "a\n1e999\n-1e999\nnan\n")
write("vocabulary", "duplicate_tokens.vocab", "<pad>\n<unk>\nfilm\nfilm\n")
write("vocabulary", "truncated_escape.vocab", "<pad>\n<unk>\nab\\")
write("vocabulary", "bad_escape.vocab", "<pad>\n<unk>\n\\q\n\\x4\n")
