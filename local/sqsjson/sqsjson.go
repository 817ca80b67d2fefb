// Package sqsjson lets today's AWS SDK, which speaks SQS's JSON protocol,
// use goaws, which speaks only the older query protocol. It translates the
// handful of operations the service and its tests use, request and answer,
// and leaves every queue behaviour (visibility, receive counts, redrive) to
// goaws. Tests and the local run only.
package sqsjson

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Proxy forwards to a goaws base URL.
type Proxy struct {
	Target string
	Client *http.Client
}

type nameValue struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

type xmlMessage struct {
	MessageID         string      `xml:"MessageId"`
	ReceiptHandle     string      `xml:"ReceiptHandle"`
	MD5OfBody         string      `xml:"MD5OfBody"`
	Body              string      `xml:"Body"`
	Attributes        []nameValue `xml:"Attribute"`
	MessageAttributes []struct {
		Name  string `xml:"Name"`
		Value struct {
			DataType    string `xml:"DataType"`
			StringValue string `xml:"StringValue"`
		} `xml:"Value"`
	} `xml:"MessageAttribute"`
}

type xmlAnswer struct {
	QueueURL         string       `xml:"CreateQueueResult>QueueUrl"`
	QueueAttributes  []nameValue  `xml:"GetQueueAttributesResult>Attribute"`
	MessageID        string       `xml:"SendMessageResult>MessageId"`
	MD5OfMessageBody string       `xml:"SendMessageResult>MD5OfMessageBody"`
	Messages         []xmlMessage `xml:"ReceiveMessageResult>Message"`
	Error            struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	var in map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "InvalidParameterValue", "body is not JSON")
		return
	}
	form, err := toForm(op, in)
	if err != nil {
		fail(w, http.StatusBadRequest, "UnsupportedOperation", err.Error())
		return
	}
	resp, err := p.Client.PostForm(p.Target, form)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "goaws unreachable")
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans xmlAnswer
	if err := xml.Unmarshal(raw, &ans); err != nil {
		fail(w, http.StatusBadGateway, "InternalError", "goaws answered something that is not XML")
		return
	}
	if resp.StatusCode >= 300 || ans.Error.Code != "" {
		fail(w, max(resp.StatusCode, 400), ans.Error.Code, ans.Error.Message)
		return
	}
	writeJSON(w, fromXML(op, ans))
}

func toForm(op string, in map[string]any) (url.Values, error) {
	f := url.Values{"Action": {op}, "Version": {"2012-11-05"}}
	str := func(k string) {
		if v, ok := in[k]; ok {
			f.Set(k, fmt.Sprint(v))
		}
	}
	list := func(jsonKey, formKey string) {
		vs, _ := in[jsonKey].([]any)
		for i, v := range vs {
			f.Set(formKey+"."+strconv.Itoa(i+1), fmt.Sprint(v))
		}
	}
	switch op {
	case "CreateQueue":
		str("QueueName")
		attrs, _ := in["Attributes"].(map[string]any)
		for i, k := range slices.Sorted(maps.Keys(attrs)) {
			n := "Attribute." + strconv.Itoa(i+1)
			f.Set(n+".Name", k)
			f.Set(n+".Value", fmt.Sprint(attrs[k]))
		}
	case "GetQueueAttributes":
		str("QueueUrl")
		list("AttributeNames", "AttributeName")
	case "SendMessage":
		str("QueueUrl")
		str("MessageBody")
		str("DelaySeconds")
		attrs, _ := in["MessageAttributes"].(map[string]any)
		for i, k := range slices.Sorted(maps.Keys(attrs)) {
			n := "MessageAttribute." + strconv.Itoa(i+1)
			v, _ := attrs[k].(map[string]any)
			f.Set(n+".Name", k)
			f.Set(n+".Value.DataType", fmt.Sprint(v["DataType"]))
			f.Set(n+".Value.StringValue", fmt.Sprint(v["StringValue"]))
		}
	case "ReceiveMessage":
		str("QueueUrl")
		str("MaxNumberOfMessages")
		str("VisibilityTimeout")
		str("WaitTimeSeconds")
		list("AttributeNames", "AttributeName")
		list("MessageSystemAttributeNames", "AttributeName")
		list("MessageAttributeNames", "MessageAttributeName")
	case "DeleteMessage":
		str("QueueUrl")
		str("ReceiptHandle")
	case "ChangeMessageVisibility":
		str("QueueUrl")
		str("ReceiptHandle")
		str("VisibilityTimeout")
	default:
		return nil, fmt.Errorf("%s is not translated", op)
	}
	return f, nil
}

func fromXML(op string, a xmlAnswer) any {
	switch op {
	case "CreateQueue":
		return map[string]string{"QueueUrl": a.QueueURL}
	case "GetQueueAttributes":
		return map[string]any{"Attributes": pairs(a.QueueAttributes)}
	case "SendMessage":
		return map[string]string{"MessageId": a.MessageID, "MD5OfMessageBody": a.MD5OfMessageBody}
	case "ReceiveMessage":
		msgs := []map[string]any{}
		for _, m := range a.Messages {
			attrs := map[string]any{}
			for _, ma := range m.MessageAttributes {
				attrs[ma.Name] = map[string]string{"DataType": ma.Value.DataType, "StringValue": ma.Value.StringValue}
			}
			msgs = append(msgs, map[string]any{
				"MessageId": m.MessageID, "ReceiptHandle": m.ReceiptHandle, "MD5OfBody": m.MD5OfBody,
				"Body": m.Body, "Attributes": pairs(m.Attributes), "MessageAttributes": attrs,
			})
		}
		return map[string]any{"Messages": msgs}
	default:
		return map[string]any{}
	}
}

func pairs(nv []nameValue) map[string]string {
	m := make(map[string]string, len(nv))
	for _, p := range nv {
		m[p.Name] = p.Value
	}
	return m
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", code+";Sender")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
}
