package extauthz

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// messageValue turns a protobuf message into an OPA value shaped like its
// protojson encoding (what opa-envoy-plugin feeds its policies): lowerCamelCase
// field names, fields at their zero value left out, 64-bit integers as
// strings, enums by name, bytes in base64, well-known types in their JSON
// form. It walks the message once and builds AST terms directly.
func messageValue(m protoreflect.Message) ast.Value {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		return timestampValue(m)
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
		"google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.FieldMask",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
		"google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.UInt32Value",
		"google.protobuf.UInt64Value", "google.protobuf.FloatValue", "google.protobuf.DoubleValue":
		return wellKnownValue(m)
	}
	var pairs [][2]*ast.Term
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		pairs = append(pairs, [2]*ast.Term{ast.InternedTerm(fd.JSONName()), ast.NewTerm(fieldValue(fd, v))})
		return true
	})
	return ast.NewObject(pairs...)
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) ast.Value {
	switch {
	case fd.IsMap():
		mv := v.Map()
		pairs := make([][2]*ast.Term, 0, mv.Len())
		vd := fd.MapValue()
		mv.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			pairs = append(pairs, [2]*ast.Term{ast.StringTerm(k.String()), ast.NewTerm(scalarValue(vd, v))})
			return true
		})
		return ast.NewObject(pairs...)
	case fd.IsList():
		lv := v.List()
		terms := make([]*ast.Term, lv.Len())
		for i := range terms {
			terms[i] = ast.NewTerm(scalarValue(fd, lv.Get(i)))
		}
		return ast.NewArray(terms...)
	}
	return scalarValue(fd, v)
}

// scalarValue converts one singular value (a message counts as one).
func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) ast.Value {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageValue(v.Message())
	case protoreflect.BoolKind:
		return ast.Boolean(v.Bool())
	case protoreflect.StringKind:
		return ast.String(v.String())
	case protoreflect.BytesKind:
		return ast.String(base64.StdEncoding.EncodeToString(v.Bytes()))
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return ast.String(string(ev.Name()))
		}
		return ast.Number(strconv.FormatInt(int64(v.Enum()), 10))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return ast.Number(strconv.FormatInt(v.Int(), 10))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return ast.Number(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return ast.String(strconv.FormatInt(v.Int(), 10))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return ast.String(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return ast.String("NaN")
		case math.IsInf(f, 1):
			return ast.String("Infinity")
		case math.IsInf(f, -1):
			return ast.String("-Infinity")
		}
		return ast.Number(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return ast.Null{}
}

// timestampValue writes a Timestamp as protojson does.
func timestampValue(m protoreflect.Message) ast.Value {
	fields := m.Descriptor().Fields()
	return ast.String(timestampString(m.Get(fields.ByName("seconds")).Int(), int32(m.Get(fields.ByName("nanos")).Int())))
}

// timestampString is RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits,
// as protojson writes a Timestamp.
func timestampString(secs int64, nanos int32) string {
	t := time.Unix(secs, int64(nanos)).UTC()
	var layout string
	switch {
	case nanos == 0:
		layout = "2006-01-02T15:04:05Z"
	case nanos%1e6 == 0:
		layout = "2006-01-02T15:04:05.000Z"
	case nanos%1e3 == 0:
		layout = "2006-01-02T15:04:05.000000Z"
	default:
		layout = "2006-01-02T15:04:05.000000000Z"
	}
	return t.Format(layout)
}

// wellKnownValue handles the rarer well-known types through protojson; they
// do not occur on the hot path (metadata_context, context extensions are
// plain strings).
func wellKnownValue(m protoreflect.Message) ast.Value {
	bs, err := protojson.Marshal(m.Interface())
	if err != nil {
		return ast.Null{}
	}
	v, err := ast.ValueFromReader(bytes.NewReader(bs))
	if err != nil {
		return ast.Null{}
	}
	return v
}
