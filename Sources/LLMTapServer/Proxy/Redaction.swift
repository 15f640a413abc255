import LLMTapCore
import NIOCore

extension CallRecord {
    /// `--redact`: every word llmtap keeps of the call goes through the redactor — the parsed
    /// content and the raw bytes. A content-encoded (gzip, deflate) response body is stored
    /// decoded, so its text can be redacted too.
    mutating func redact(with redactor: Redactor) {
        guard !redactor.isEmpty else { return }
        context = context.map(redactor.redact)
        parameters = parameters.map(redactor.redact)
        toolCalls = toolCalls.map(redactor.redact)
        chatInput = chatInput.map(redactor.redact)
        output = output.map(redactor.redact)
        outputs = outputs?.map(redactor.redact)
        errorMessage = errorMessage.map(redactor.redact)
        requestBody = redactor.redact(bytes: requestBody)
        if let coding = responseContentEncoding {
            guard let decoded = CallObservation.decode(ByteBuffer(bytes: responseBody), coding: coding) else {
                // A coding llmtap cannot undo: the bytes cannot be searched, so they are not kept.
                responseBody = []
                return
            }
            responseBody = Array(decoded.readableBytesView)
            responseContentEncoding = nil
        }
        responseBody = redactor.redact(bytes: responseBody)
    }
}
