"""Realistic SyncML messages, modelled on the captured SyncEvolution traffic in the protocol notes."""

INIT_12 = b"""<?xml version="1.0" encoding="UTF-8"?>
<SyncML xmlns='SYNCML:SYNCML1.2'>
 <SyncHdr>
  <VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto>
  <SessionID>1764089279</SessionID><MsgID>1</MsgID>
  <Target><LocURI>http://127.0.0.1:9000/sync</LocURI></Target>
  <Source><LocURI>imei-0001</LocURI><LocName>bob</LocName></Source>
  <Cred><Meta><Format xmlns='syncml:metinf'>b64</Format><Type xmlns='syncml:metinf'>syncml:auth-basic</Type></Meta>
   <Data>Ym9iOnB3Mg==</Data></Cred>
  <Meta><MaxMsgSize xmlns='syncml:metinf'>150000</MaxMsgSize><MaxObjSize xmlns='syncml:metinf'>4000000</MaxObjSize></Meta>
 </SyncHdr>
 <SyncBody>
  <Alert><CmdID>1</CmdID><Data>200</Data>
   <Item><Target><LocURI>addressbook</LocURI></Target><Source><LocURI>./addressbook</LocURI></Source>
    <Meta><Anchor xmlns='syncml:metinf'><Last>20261125T172759Z</Last><Next>20261125T172812Z</Next></Anchor>
     <MaxObjSize xmlns='syncml:metinf'>4000000</MaxObjSize></Meta></Item>
  </Alert>
  <Put><CmdID>2</CmdID><Meta><Type xmlns='syncml:metinf'>application/vnd.syncml-devinf+xml</Type></Meta>
   <Item><Source><LocURI>./devinf12</LocURI></Source><Data>
    <DevInf xmlns='syncml:devinf'>
     <VerDTD>1.2</VerDTD><Man>SyncEvolution</Man><Mod>SyncEvolution</Mod><OEM>Patrick Ohly</OEM>
     <FwV>2.0.0</FwV><SwV>2.0.0</SwV><HwV>unknown</HwV><DevID>imei-0001</DevID><DevTyp>workstation</DevTyp>
     <UTC/><SupportLargeObjs/><SupportNumberOfChanges/>
     <DataStore>
      <SourceRef>./addressbook</SourceRef><DisplayName>addressbook</DisplayName><MaxGUIDSize>64</MaxGUIDSize>
      <Rx-Pref><CTType>text/vcard</CTType><VerCT>3.0</VerCT></Rx-Pref>
      <Rx><CTType>text/x-vcard</CTType><VerCT>2.1</VerCT></Rx>
      <Tx-Pref><CTType>text/vcard</CTType><VerCT>3.0</VerCT></Tx-Pref>
      <Tx><CTType>text/x-vcard</CTType><VerCT>2.1</VerCT></Tx>
      <CTCap><CTType>text/vcard</CTType><VerCT>3.0</VerCT>
       <Property><PropName>BEGIN</PropName><ValEnum>VCARD</ValEnum></Property>
       <Property><PropName>N</PropName><MaxOccur>1</MaxOccur></Property>
       <Property><PropName>FN</PropName></Property>
       <Property><PropName>TEL</PropName><MaxSize>40</MaxSize>
        <PropParam><ParamName>TYPE</ParamName><ValEnum>CELL</ValEnum><ValEnum>HOME</ValEnum><ValEnum>WORK</ValEnum></PropParam></Property>
       <Property><PropName>EMAIL</PropName></Property>
       <Property><PropName>PHOTO</PropName><PropParam><ParamName>ENCODING</ParamName></PropParam></Property>
      </CTCap>
      <SyncCap><SyncType>1</SyncType><SyncType>2</SyncType><SyncType>7</SyncType></SyncCap>
     </DataStore>
    </DevInf></Data></Item>
  </Put>
  <Get><CmdID>3</CmdID><Meta><Type xmlns='syncml:metinf'>application/vnd.syncml-devinf+xml</Type></Meta>
   <Item><Target><LocURI>./devinf12</LocURI></Target></Item></Get>
  <Final/>
 </SyncBody>
</SyncML>
"""

VCARD_30 = "BEGIN:VCARD\nVERSION:3.0\nN:Green;Dan;;;\nFN:Dan Green\nTEL;TYPE=CELL:+49 170 1234567\nEND:VCARD\n"

SYNC_12 = (
    """<?xml version="1.0" encoding="UTF-8"?>
<SyncML xmlns='SYNCML:SYNCML1.2'>
<SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>1764089279</SessionID><MsgID>2</MsgID>
<Target><LocURI>http://127.0.0.1:9000/sync?sessionid=abc</LocURI></Target><Source><LocURI>imei-0001</LocURI></Source></SyncHdr>
<SyncBody>
<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><TargetRef>imei-0001</TargetRef><SourceRef>http://127.0.0.1:9000/sync</SourceRef><Data>200</Data></Status>
<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>5</CmdRef><Cmd>Alert</Cmd><TargetRef>./addressbook</TargetRef><SourceRef>addressbook</SourceRef><Data>200</Data>
 <Item><Data><Anchor xmlns='syncml:metinf'><Next>20261125T172812Z</Next></Anchor></Data></Item></Status>
<Sync><CmdID>4</CmdID><Target><LocURI>addressbook</LocURI></Target><Source><LocURI>./addressbook</LocURI></Source>
 <NumberOfChanges>3</NumberOfChanges>
 <Replace><CmdID>5</CmdID><Meta><Type xmlns='syncml:metinf'>text/vcard</Type></Meta>
  <Item><Source><LocURI>0</LocURI></Source><Data><![CDATA["""
    + VCARD_30
    + """]]></Data></Item></Replace>
 <Delete><CmdID>6</CmdID><Item><Source><LocURI>1</LocURI></Source></Item></Delete>
 <Add><CmdID>7</CmdID><Meta><Type xmlns='syncml:metinf'>text/vcard</Type><Size xmlns='syncml:metinf'>21500</Size></Meta>
  <Item><Source><LocURI>new1</LocURI></Source><Data>BEGIN:VCARD&#10;VERSION:3.0&#10;FN:A &amp; B &lt;c&gt;&#10;</Data><MoreData/></Item></Add>
</Sync><Final/>
</SyncBody></SyncML>
"""
).encode()

MAP_11 = b"""<?xml version="1.0"?>
<SyncML xmlns="SYNCML:SYNCML1.1"><SyncHdr><VerDTD>1.1</VerDTD><VerProto>SyncML/1.1</VerProto>
<SessionID>77</SessionID><MsgID>3</MsgID><Target><LocURI>http://x/sync</LocURI></Target><Source><LocURI>imei-0002</LocURI></Source></SyncHdr>
<SyncBody>
<Status><CmdID>1</CmdID><MsgRef>2</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><TargetRef>imei-0002</TargetRef><SourceRef>http://x/sync</SourceRef><Data>200</Data></Status>
<Status><CmdID>2</CmdID><MsgRef>2</MsgRef><CmdRef>8</CmdRef><Cmd>Add</Cmd><SourceRef>9</SourceRef><Data>201</Data></Status>
<Map><CmdID>3</CmdID><Target><LocURI>addressbook</LocURI></Target><Source><LocURI>./addressbook</LocURI></Source>
<MapItem><Target><LocURI>9</LocURI></Target><Source><LocURI>4</LocURI></Source></MapItem>
<MapItem><Target><LocURI>10</LocURI></Target><Source><LocURI>5</LocURI></Source></MapItem>
</Map><Final/></SyncBody></SyncML>
"""

DEVINF_11 = b"""<DevInf xmlns="syncml:devinf"><VerDTD>1.1</VerDTD><Man>Nokia</Man><Mod>6230i</Mod>
<SwV>03.88</SwV><HwV>0714</HwV><DevID>IMEI:351234567890123</DevID><DevTyp>phone</DevTyp>
<DataStore><SourceRef>./C\\System\\Data\\Contacts.cdb</SourceRef><MaxGUIDSize>8</MaxGUIDSize>
<Rx-Pref><CTType>text/x-vcard</CTType><VerCT>2.1</VerCT></Rx-Pref>
<Tx-Pref><CTType>text/x-vcard</CTType><VerCT>2.1</VerCT></Tx-Pref>
<DSMem><MaxID>500</MaxID></DSMem><SyncCap><SyncType>1</SyncType><SyncType>2</SyncType></SyncCap></DataStore>
<CTCap><CTType>text/x-vcard</CTType>
<PropName>BEGIN</PropName><ValEnum>VCARD</ValEnum>
<PropName>VERSION</PropName><ValEnum>2.1</ValEnum>
<PropName>N</PropName>
<PropName>TEL</PropName><ParamName>CELL</ParamName><ParamName>HOME</ParamName><ParamName>WORK</ParamName>
<PropName>EMAIL</PropName><ParamName>INTERNET</ParamName>
<PropName>NOTE</PropName><DataType>chr</DataType><Size>255</Size>
</CTCap></DevInf>"""
