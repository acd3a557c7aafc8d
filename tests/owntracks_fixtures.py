"""OwnTracks payloads from the owntracks/json-schema test folder and the booklet, verbatim."""

ACCEPTED = {
    "location-5s": b'{"_type":"location","acc":9,"alt":93,"batt":94,"bs":1,"BSSID":"ca:fe:ed:40:81:5b","cog":252,"conn":"w","lat":53.430722,"lon":5.112126,"m":1,"p":99.182,"SSID":"hotel","t":"p","tid":"SG","tst":1701263310,"vac":3,"vel":1}',
    "location-sk": b'{"_type":"location","acc":35,"alt":40,"batt":80,"bs":1,"BSSID":"ca:fe:36:2:b9:2b","conn":"w","created_at":1701258670,"inregions":["office"],"inrids":["cb6046"],"lat":71.215592,"lon":3.767957,"m":1,"p":99.834,"SSID":"office","t":"p","tid":"SG","tst":1701258666,"vac":19}',
    "location-short": b'{"lat":44.221389,"lon":6.64635,"tst":1692430980,"_type":"location","batt":100}',
    "traccar-http": b'{"cog":271,"batt":41,"lon":2.29513,"acc":5,"vel":61,"vac":21,"lat":48.85833,"t":"u","tst":1497508651,"alt":167,"_type":"location","topic":"owntracks/jane/iphone","p":71,"tid":"JJ"}',
    "lwt": b'{"_type":"lwt","tst":1699882482}',
    "lwt-android": b'{"_type":"lwt"}',
}

TRANSITION = b'{"_type":"transition","acc":6,"created_at":1701264373,"desc":"blukii","event":"enter","lat":61.195709,"lon":9.688233,"rid":"c00b92","t":"b","tid":"SG","tst":1701264368,"wtst":1610104404}'

# (name, channel suffix, payload, expected reason)
REJECTED = [
    (
        "location-lat-missing",
        "",
        b'{"_type":"location","acc":35,"alt":0,"batt":75,"bs":1,"conn":"w","lon":8.688245,"m":1,"tag":"Coffee","tid":"C1","tst":1699882482}',
        "missing_field",
    ),
    (
        "transition-illegal-lat",
        "event",
        b'{"_type":"transition","acc":6,"created_at":1701264373,"desc":"blukii","event":"enter","lat":"61.195709","lon":9.688233,"rid":"c00b92","t":"b","tid":"SG","tst":1701264368,"wtst":1610104404}',
        "bad_field",
    ),
    ("cmd-on-location-topic", "", b'{"_type":"cmd","action":"reportLocation"}', "bad_field"),
]
