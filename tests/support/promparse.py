"""A strict parser for the Prometheus text exposition format (0.0.4), for
tests: it refuses what Prometheus would refuse (bad names, bad escapes,
samples before their TYPE, families split apart, duplicate series,
inconsistent histograms) instead of skipping it."""
import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ParseError(ValueError):
    pass


def parse_value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ParseError("%s: bad value %r" % (where, text))


def parse_labels(s, i, where):
    """s[i] == '{'; returns (labels dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise ParseError("%s: bad label name at %r" % (where, s[i:]))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after label %s" % (where, name))
        i += 2
        value = []
        while s[i] != '"':
            if s[i] == "\\":
                esc = s[i + 1]
                if esc not in '\\"n':
                    raise ParseError("%s: bad escape \\%s" % (where, esc))
                value.append("\n" if esc == "n" else esc)
                i += 2
            else:
                value.append(s[i])
                i += 1
        i += 1
        if name in labels:
            raise ParseError("%s: label %s twice" % (where, name))
        labels[name] = "".join(value)
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ParseError("%s: expected , or } after label %s" % (where, name))


def family_of(sample, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix) and types.get(sample[: -len(suffix)]) in ("histogram", "summary"):
            return sample[: -len(suffix)]
    return sample


def parse(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    fams = {}
    types = {}
    seen_series = set()
    current = None
    closed = set()
    if not text.endswith("\n"):
        raise ParseError("the exposition must end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % n
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ParseError("%s: bad metric name %r" % (where, name))
                fam = fams.setdefault(name, {"type": "untyped", "help": None, "samples": []})
                if parts[1] == "TYPE":
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        raise ParseError("%s: bad type %r" % (where, t))
                    if name in types:
                        raise ParseError("%s: second TYPE for %s" % (where, name))
                    if fam["samples"]:
                        raise ParseError("%s: TYPE for %s after its samples" % (where, name))
                    types[name] = t
                    fam["type"] = t
                else:
                    fam["help"] = parts[3] if len(parts) > 3 else ""
            continue
        m = NAME.match(line)
        if not m:
            raise ParseError("%s: bad sample line %r" % (where, line))
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        if i >= len(line) or line[i] != " ":
            raise ParseError("%s: expected a space before the value" % where)
        fields = line[i + 1:].split(" ")
        if len(fields) not in (1, 2):
            raise ParseError("%s: trailing text %r" % (where, line[i + 1:]))
        value = parse_value(fields[0], where)
        fam_name = family_of(name, types)
        if fam_name != current:
            if fam_name in closed:
                raise ParseError("%s: samples of %s are not together" % (where, fam_name))
            if current:
                closed.add(current)
            current = fam_name
        series = (name, tuple(sorted(labels.items())))
        if series in seen_series:
            raise ParseError("%s: duplicate series %s%s" % (where, name, labels))
        seen_series.add(series)
        fams.setdefault(fam_name, {"type": "untyped", "help": None, "samples": []})["samples"].append(
            (name, labels, value))
    for name, fam in fams.items():
        if fam["type"] == "counter":
            for s_name, labels, v in fam["samples"]:
                if v < 0 or math.isnan(v):
                    raise ParseError("counter %s%s is %s" % (s_name, labels, v))
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return fams


def check_histogram(name, samples):
    groups = {}
    for s_name, labels, v in samples:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s_name == name + "_bucket":
            if "le" not in labels:
                raise ParseError("%s_bucket without le" % name)
            g["buckets"].append((parse_value(labels["le"], name), v))
        elif s_name == name + "_sum":
            g["sum"] = v
        elif s_name == name + "_count":
            g["count"] = v
        else:
            raise ParseError("unexpected sample %s in histogram %s" % (s_name, name))
    for key, g in groups.items():
        if g["sum"] is None or g["count"] is None:
            raise ParseError("histogram %s%s lacks _sum or _count" % (name, key))
        b = g["buckets"]
        if not b or b[-1][0] != math.inf:
            raise ParseError("histogram %s%s lacks the +Inf bucket" % (name, key))
        if [x[0] for x in b] != sorted(x[0] for x in b):
            raise ParseError("histogram %s%s buckets out of order" % (name, key))
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise ParseError("histogram %s%s buckets not cumulative" % (name, key))
        if b[-1][1] != g["count"]:
            raise ParseError("histogram %s%s: +Inf bucket %s != count %s" % (name, key, b[-1][1], g["count"]))


def value(fams, name, **labels):
    """The value of the one sample `name` with exactly these labels (None if absent)."""
    fam = fams.get(family_of(name, {k: v["type"] for k, v in fams.items()}))
    if not fam:
        return None
    for s_name, l, v in fam["samples"]:
        if s_name == name and l == labels:
            return v
    return None
