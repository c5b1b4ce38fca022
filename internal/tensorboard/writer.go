// Package tensorboard writes TensorBoard event files
// (events.out.tfevents.*): scalars at a step, text samples, and the restart
// marker that makes TensorBoard drop the points a resumed run redoes.
//
// An event file is a sequence of TFRecords, each holding one serialized
// tensorflow.Event protocol buffer. The few messages needed are small, so
// they are encoded here field by field with protowire rather than through
// generated code:
//
//	Event         {1: wall_time double, 2: step int64, 3: file_version string,
//	               5: summary Summary, 6: session_log SessionLog}
//	Summary       {1: repeated Value}
//	Value         {1: tag string, 2: simple_value float, 8: tensor TensorProto,
//	               9: metadata SummaryMetadata}
//	SummaryMetadata {1: plugin_data {1: plugin_name string, 2: content bytes}}
//	TensorProto   {1: dtype enum (7 = DT_STRING), 2: tensor_shape {2: dim {1: size}},
//	               8: repeated string_val bytes}
//	SessionLog    {1: status enum (1 = START)}
//
// A TFRecord is: length uint64 little-endian, masked CRC-32C of the length,
// the data, masked CRC-32C of the data.
package tensorboard

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the messages above.
const (
	eventWallTime    = 1
	eventStep        = 2
	eventFileVersion = 3
	eventSummary     = 5
	eventSessionLog  = 6

	summaryValue = 1

	valueTag         = 1
	valueSimpleValue = 2
	valueTensor      = 8
	valueMetadata    = 9

	metadataPluginData = 1
	pluginName         = 1

	tensorDtype     = 1
	tensorShape     = 2
	tensorStringVal = 8
	shapeDim        = 2
	dimSize         = 1

	dtString = 7 // tensorflow.DataType DT_STRING

	sessionLogStatus = 1
	sessionStart     = 1 // SessionLog.START
)

// FileVersion is the version string of the first event of every file.
const FileVersion = "brain.Event:2"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is the TFRecord checksum: CRC-32C rotated right by 15 bits plus
// a constant, so that a CRC of data holding CRCs stays well distributed.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Writer appends events to one file. It is not safe for concurrent use.
type Writer struct {
	f    *os.File
	w    *bufio.Writer
	path string
}

// Create makes dir and a new event file in it, named as TensorBoard's own
// writers name theirs, and writes the file-version event.
func Create(dir string, now time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(host)
	base := fmt.Sprintf("events.out.tfevents.%d.%s.%d", now.Unix(), host, os.Getpid())
	// A second writer in the same second (a quick resume) gets its own file.
	var f *os.File
	path := ""
	for i := 0; ; i++ {
		path = filepath.Join(dir, fmt.Sprintf("%s.%d", base, i))
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !os.IsExist(err) || i > 100 {
			return nil, fmt.Errorf("tensorboard: %w", err)
		}
	}
	tw := &Writer{f: f, w: bufio.NewWriter(f), path: path}
	ev := appendString(appendWallTime(nil, now), eventFileVersion, FileVersion)
	if err := tw.record(ev); err != nil {
		f.Close()
		return nil, err
	}
	return tw, tw.Flush()
}

// Path is the event file's name.
func (w *Writer) Path() string { return w.path }

func appendWallTime(b []byte, t time.Time) []byte {
	b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(float64(t.Unix())+float64(t.Nanosecond())/1e9))
}

// appendMessage appends field num holding an encoded message (or bytes).
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// appendString appends field num holding s.
func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarint appends field num holding an integer or enum.
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// record frames one serialized Event as a TFRecord.
func (w *Writer) record(data []byte) error {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], MaskedCRC(hdr[:8]))
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], MaskedCRC(data))
	for _, b := range [][]byte{hdr[:], data, tail[:]} {
		if _, err := w.w.Write(b); err != nil {
			return fmt.Errorf("tensorboard: write %s: %w", w.path, err)
		}
	}
	return nil
}

// Scalars writes every metric as a scalar at step, in sorted tag order,
// as one event.
func (w *Writer) Scalars(step int64, wall time.Time, metrics map[string]float64) error {
	var sum []byte
	for _, tag := range slices.Sorted(maps.Keys(metrics)) {
		v := appendString(nil, valueTag, tag)
		v = protowire.AppendTag(v, valueSimpleValue, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(metrics[tag])))
		sum = appendMessage(sum, summaryValue, v)
	}
	return w.event(step, wall, eventSummary, sum)
}

// Text writes text under tag at step, shown by TensorBoard's text plugin
// (which renders it as markdown).
func (w *Writer) Text(step int64, wall time.Time, tag, text string) error {
	shape := appendMessage(nil, shapeDim, appendVarint(nil, dimSize, 1))
	tensor := appendVarint(nil, tensorDtype, dtString)
	tensor = appendMessage(tensor, tensorShape, shape)
	tensor = appendString(tensor, tensorStringVal, text)
	meta := appendMessage(nil, metadataPluginData, appendString(nil, pluginName, "text"))
	v := appendString(nil, valueTag, tag)
	v = appendMessage(v, valueTensor, tensor)
	v = appendMessage(v, valueMetadata, meta)
	return w.event(step, wall, eventSummary, appendMessage(nil, summaryValue, v))
}

// event writes an event at step holding msg as field num (its summary or
// session log).
func (w *Writer) event(step int64, wall time.Time, num protowire.Number, msg []byte) error {
	ev := appendWallTime(nil, wall)
	ev = appendVarint(ev, eventStep, uint64(step))
	return w.record(appendMessage(ev, num, msg))
}

// Restart marks that the run continues from step (a resumed run): on
// reading it TensorBoard discards the points at step and after that an
// earlier file recorded, so the redone steps are not drawn twice.
func (w *Writer) Restart(step int64, wall time.Time) error {
	return w.event(step, wall, eventSessionLog, appendVarint(nil, sessionLogStatus, sessionStart))
}

// Flush writes buffered events to the file.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("tensorboard: write %s: %w", w.path, err)
	}
	return nil
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard: close %s: %w", w.path, cerr)
	}
	return err
}
