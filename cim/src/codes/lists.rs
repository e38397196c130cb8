//! The code lists this codec checks against, copied from the `Standard…TypeList` enums of
//! `shared/cim/codelists/urn-entsoe-eu-wgedi-codelists.schema.json` (opengeh-edi @ b1cd5ead).
//! The test `code_lists_match_the_schema` compares every list here with that file, so an
//! edit that drifts from DataHub's list fails the build's tests.

use super::code_list;

code_list! {
    /// A market role (`marketRole.type`): DDQ energy supplier, DGL metered data administrator, DDZ metering point administrator, MDR metered data responsible, and the rest of the list.
    Role, "RoleTypeList",
    [
        "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13",
        "A14", "A15", "A16", "A17", "A18", "A19", "A20", "A21", "A22", "A23", "A24", "A25", "A26",
        "A27", "A28", "A29", "A30", "A31", "A32", "A33", "A34", "A35", "A36", "A37", "A38", "A39",
        "A40", "A41", "A42", "A43", "A44", "A45", "A46", "A47", "A48", "A49", "A50", "A51", "DDK",
        "DDM", "DDQ", "DDX", "DDZ", "DEA", "DGL", "EZ", "MDR", "STS", "Z06"
    ],
    {
        /// DDQ, energy supplier: this pipeline's own role.
        ENERGY_SUPPLIER = "DDQ",
        /// DDM, grid access provider (grid company).
        GRID_ACCESS_PROVIDER = "DDM",
        /// DDZ, metering point administrator (DataHub).
        METERING_POINT_ADMINISTRATOR = "DDZ",
        /// DGL, metered data administrator (DataHub).
        METERED_DATA_ADMINISTRATOR = "DGL",
        /// MDR, metered data responsible (grid company).
        METERED_DATA_RESPONSIBLE = "MDR",
        /// DDK, balance responsible party.
        BALANCE_RESPONSIBLE_PARTY = "DDK",
        /// EZ, system operator (Energinet).
        SYSTEM_OPERATOR = "EZ",
    }
}

code_list! {
    /// The business process (`process.processType`) a document belongs to.
    ProcessType, "ProcessTypeList",
    [
        "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13",
        "A14", "A15", "A16", "A17", "A18", "A19", "A20", "A21", "A22", "A23", "A24", "A25", "A26",
        "A27", "A28", "A29", "A30", "A31", "A32", "A33", "A34", "A35", "A36", "A37", "A38", "A39",
        "A40", "A41", "A42", "A43", "A44", "A45", "A46", "A47", "A48", "A49", "A50", "A51", "A52",
        "A53", "A54", "A55", "A56", "A57", "A58", "A59", "A60", "A61", "A62", "A63", "A64", "A65",
        "D02", "D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10", "D11", "D12", "D13", "D14",
        "D15", "D16", "D17", "D18", "D19", "D20", "D21", "D22", "D23", "D24", "D25", "D26", "D27",
        "D28", "D29", "D30", "D31", "D32", "D33", "D34", "D35", "D36", "D37", "D38", "D39", "D40",
        "D41", "D42", "D43", "D44", "D45", "D46", "D48", "E01", "E02", "E03", "E05", "E06", "E0G",
        "E20", "E23", "E30", "E32", "E34", "E53", "E56", "E65", "E66", "E67", "E75", "E79", "E80",
        "E84"
    ],
    {
        /// E23, periodic metering: ordinary metered data.
        PERIODIC_METERING = "E23",
        /// D42, periodic flex metering.
        PERIODIC_FLEX_METERING = "D42",
        /// E30, historical data.
        HISTORICAL_DATA = "E30",
        /// D32, correction settlement.
        CORRECTION_SETTLEMENT = "D32",
        /// D03, preliminary (temporary) aggregation.
        PRELIMINARY_AGGREGATION = "D03",
        /// D04, balance fixing (1st settlement).
        BALANCE_FIXING = "D04",
        /// D05, wholesale fixing (2nd settlement).
        WHOLESALE_FIXING = "D05",
        /// E03, change of balance supplier (BRS-001).
        CHANGE_OF_SUPPLIER = "E03",
        /// E65, customer move-in (BRS-009).
        MOVE_IN = "E65",
        /// E01, move.
        MOVE = "E01",
        /// E20, end of supply (BRS-002).
        END_OF_SUPPLY = "E20",
        /// E66, customer move-out (BRS-010; sent in RSM-005).
        MOVE_OUT = "E66",
        /// D07, rollback of a change of supplier (BRS-003; sent in RSM-003).
        ROLLBACK_CHANGE_OF_SUPPLIER = "D07",
        /// D33, incorrect move (BRS-011; sent in RSM-003).
        INCORRECT_MOVE = "D33",
        /// E34, update master data consumer (BRS-015; sent in RSM-027).
        UPDATE_CUSTOMER_MASTER_DATA = "E34",
        /// D15, connect metering point.
        CONNECT_METERING_POINT = "D15",
        /// E32, update master data metering point.
        UPDATE_MASTER_DATA_METERING_POINT = "E32",
        /// D08, update charge prices.
        UPDATE_CHARGE_PRICES = "D08",
        /// D17, update master data settlement (charge links).
        UPDATE_MASTER_DATA_SETTLEMENT = "D17",
        /// D18, update charge master data.
        UPDATE_CHARGE_MASTER_DATA = "D18",
    }
}

code_list! {
    /// The document type code (`type`), e.g. E66 validated metered data.
    MessageType, "MessageTypeList",
    [
        "294", "392", "414", "432", "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09",
        "A10", "A11", "A12", "A13", "A14", "A15", "A16", "A17", "A18", "A19", "A20", "A21", "A22",
        "A23", "A24", "A25", "A26", "A27", "A28", "A30", "A31", "A32", "A33", "A34", "A35", "A36",
        "A37", "A38", "A39", "A40", "A41", "A42", "A43", "A44", "A45", "A46", "A47", "A48", "A49",
        "A50", "A51", "A52", "A53", "A54", "A55", "A56", "A57", "A58", "A59", "A60", "A61", "A62",
        "A63", "A64", "A65", "A66", "A67", "A68", "A69", "A70", "A71", "A72", "A73", "A74", "A75",
        "A76", "A77", "A78", "A79", "A80", "A81", "A82", "A83", "A84", "A85", "A86", "A87", "A88",
        "A89", "A90", "A91", "A92", "A93", "A94", "A95", "A96", "A97", "A98", "A99", "B01", "B02",
        "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B13", "B14", "B15",
        "B16", "B17", "B18", "B19", "B20", "B21", "B22", "B23", "B24", "B25", "B26", "B27", "B28",
        "B29", "B30", "B31", "B32", "B33", "B34", "B35", "B36", "B37", "B38", "B39", "B40", "B41",
        "B42", "B43", "B44", "B45", "B46", "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08",
        "D09", "D10", "D11", "D12", "D13", "D14", "D15", "D16", "D17", "D18", "D19", "D20", "D21",
        "D22", "D23", "D24", "D25", "E07", "E08", "E10", "E21", "E31", "E38", "E41", "E42", "E44",
        "E58", "E59", "E66", "E67", "E68", "E73", "E74", "E78", "ERR"
    ],
    {
        /// E66, validated metered data, time series (RSM-012).
        VALIDATED_METERED_DATA = "E66",
        /// E31, aggregated metered data (RSM-014, RSM-019).
        AGGREGATED_METERED_DATA = "E31",
        /// 392, request change of supplier (RSM-001).
        REQUEST_CHANGE_OF_SUPPLIER = "392",
        /// 414, confirmation or rejection of a request (RSM-001 confirm/reject).
        CONFIRMATION_OF_START_OF_SUPPLY = "414",
        /// 432, notification of contract termination (RSM-005 request end of supply).
        CONTRACT_TERMINATION = "432",
        /// E44, notification to supplier of contract termination (RSM-004).
        SUPPLIER_CONTRACT_TERMINATION = "E44",
        /// E67, request regarding cancellation (RSM-024).
        REQUEST_CANCELLATION = "E67",
        /// D01, request re-allocate change of supplier (RSM-003).
        REQUEST_REALLOCATE_CHANGE_OF_SUPPLIER = "D01",
        /// D15, request change of customer characteristics (RSM-027; the XSD's default).
        REQUEST_CHANGE_CUSTOMER_CHARACTERISTICS = "D15",
        /// E21, master data, consumer (RSM-028).
        CUSTOMER_MASTER_DATA = "E21",
        /// E78, cancellation of notification (RSM-025).
        NOTIFY_CANCELLATION = "E78",
        /// E07, master data, metering point (RSM-022).
        MASTER_DATA_METERING_POINT = "E07",
        /// D12, notify charge information (RSM-034).
        NOTIFY_CHARGE_INFORMATION = "D12",
        /// D07, notify master data charge (RSM-031).
        NOTIFY_MASTER_DATA_CHARGE = "D07",
        /// E73, request for validated metered data (RSM-015).
        REQUEST_VALIDATED_METERED_DATA = "E73",
        /// E74, request aggregated metered data (RSM-016).
        REQUEST_AGGREGATED_METERED_DATA = "E74",
        /// D21, request for aggregated billing information (RSM-017).
        REQUEST_AGGREGATED_BILLING_INFORMATION = "D21",
        /// 294, application acknowledgement and error report.
        ACKNOWLEDGEMENT = "294",
    }
}

code_list! {
    /// The coding scheme of an identifier (`codingScheme`): A10 GS1, A01 EIC, NDK Danish grid area, ARR CPR, VAT CVR.
    CodingScheme, "CodingSchemeTypeList",
    [
        "9", "A01", "A02", "A10", "ARR", "NAD", "NAL", "NAM", "NAT", "NAZ", "NBA", "NBE", "NBG",
        "NCH", "NCS", "NCZ", "NDE", "NDK", "NEE", "NES", "NFI", "NFR", "NGB", "NGE", "NGI", "NGR",
        "NHR", "NHU", "NIE", "NIT", "NKG", "NKZ", "NLI", "NLT", "NLU", "NLV", "NMA", "NMD", "NMK",
        "NNL", "NNN", "NNO", "NPL", "NPT", "NRO", "NRU", "NSE", "NSI", "NSK", "NTR", "NUA", "VAT"
    ],
    {
        /// A10, GS1 (GLN for parties, GSRN for metering points).
        GS1 = "A10",
        /// A01, ENTSO-E EIC.
        EIC = "A01",
        /// NDK, Danish national code (grid areas).
        DANISH_GRID_AREA = "NDK",
        /// ARR, Danish CPR number (customer).
        CPR = "ARR",
        /// VAT, VAT/CVR number (customer).
        CVR = "VAT",
    }
}

code_list! {
    /// A reason code (`reason.code`, `Reason[].code`): A01 accepted, A02 rejected, plus validation error codes.
    ReasonCode, "ReasonCodeTypeList",
    [
        "999", "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A20", "A21",
        "A22", "A23", "A24", "A25", "A26", "A27", "A28", "A29", "A30", "A41", "A42", "A43", "A44",
        "A45", "A46", "A47", "A48", "A49", "A50", "A51", "A52", "A53", "A54", "A55", "A56", "A57",
        "A58", "A59", "A60", "A61", "A62", "A63", "A64", "A65", "A66", "A67", "A68", "A69", "A70",
        "A71", "A72", "A73", "A74", "A75", "A76", "A77", "A78", "A79", "A80", "A81", "A82", "A83",
        "A84", "A85", "A86", "A87", "A88", "A89", "A90", "A91", "A92", "A93", "A94", "A95", "A96",
        "A97", "A98", "A99", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10",
        "B11", "B12", "B13", "B14", "B15", "B16", "B17", "B18", "B19", "B20", "B21", "B22", "B23",
        "B24", "B25", "B26", "B27", "B28", "B29", "B30", "B31", "B32", "B33", "B34", "B35", "B36",
        "B37", "B38", "B39", "B40", "B41", "B42", "B43", "B44", "B45", "B46", "B47", "B48", "B49",
        "B50", "B51", "B52", "B53", "B54", "B55", "B56", "B57", "B58", "B59", "B60", "B61", "B62",
        "B63", "B64", "B65", "B66", "B67", "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08",
        "D09", "D11", "D12", "D13", "D14", "D15", "D16", "D17", "D18", "D19", "D20", "D21", "D22",
        "D23", "D24", "D25", "D26", "D27", "D28", "D29", "D30", "D31", "D32", "D33", "D34", "D35",
        "D36", "D37", "D38", "D39", "D40", "D41", "D42", "D43", "D44", "D45", "D46", "D47", "D48",
        "D49", "D50", "D51", "D52", "D53", "D54", "D55", "D56", "D57", "D58", "D59", "D60", "D61",
        "D62", "D63", "D64", "D65", "D66", "D67", "D68", "D69", "D70", "D71", "D72", "E09", "E0H",
        "E0I", "E10", "E11", "E14", "E16", "E17", "E18", "E19", "E22", "E29", "E47", "E50", "E51",
        "E55", "E59", "E61", "E73", "E81", "E86", "E87", "E90", "E91", "E97", "E98"
    ],
    {
        /// A01, message fully accepted (confirm documents).
        ACCEPTED = "A01",
        /// A02, message fully rejected (reject documents).
        REJECTED = "A02",
    }
}

code_list! {
    /// `settlement_Series.version`: which correction settlement (D01 first, D02 second, D03 third).
    ProcessVariant, "ProcessVariantTypeList",
    [
        "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10"
    ],
    {
        /// D01, first correction settlement.
        FIRST_CORRECTION = "D01",
        /// D02, second correction settlement.
        SECOND_CORRECTION = "D02",
        /// D03, third correction settlement.
        THIRD_CORRECTION = "D03",
    }
}

code_list! {
    /// `businessSector.type`: 23 electricity, 27 gas.
    BusinessSector, "BusinessSectorTypeList",
    [
        "23", "27"
    ],
    {
        /// 23, electricity.
        ELECTRICITY = "23",
    }
}

code_list! {
    /// `currency_Unit.name`: the currency of amounts.
    Currency, "CurrencyTypeList",
    [
        "BAM", "BGN", "CHF", "CZK", "DKK", "EUR", "GBP", "HRK", "HUF", "ISK", "LEK", "LTL", "MKD",
        "NOK", "PLN", "RON", "RSD", "SAR", "SEK", "SKK", "TRY", "UAH", "USD"
    ],
    {
        /// Danish krone.
        DKK = "DKK",
    }
}

code_list! {
    /// The product of a series (`product`): 8716867000030 active energy, 5790001330590 tariff.
    EnergyProduct, "EnergyProductTypeList",
    [
        "5790001330590", "5790001330606", "8716867000016", "8716867000023", "8716867000030",
        "8716867000047", "8716867000115", "8716867000122", "8716867000139", "8716867000146",
        "8716867009911"
    ],
    {
        /// 8716867000030, active energy.
        ACTIVE_ENERGY = "8716867000030",
        /// 5790001330590, tariff (RSM-019 wholesale services).
        TARIFF = "5790001330590",
    }
}

code_list! {
    /// The unit of a series' quantities (`quantity_Measure_Unit.name`): KWH and the rest of UN/ECE Rec. 20 as listed by DataHub.
    Unit, "UnitOfMeasureTypeList",
    [
        "A59", "A90", "A97", "AMP", "C62", "CEL", "D54", "DD", "E08", "GWH", "H87", "HMQ", "HTZ",
        "K3", "KEL", "KMT", "KVR", "KVT", "KWH", "KWT", "MAH", "MAR", "MAW", "MIN", "MMT", "MQS",
        "MTQ", "MTR", "MTS", "MTZ", "MVA", "MWH", "P1", "SEC", "WTT"
    ],
    {
        /// KWH, kilowatt hour: the unit of metered energy.
        KWH = "KWH",
        /// MWH, megawatt hour.
        MWH = "MWH",
        /// KWT, kilowatt (power, capacity).
        KWT = "KWT",
        /// MAW, megawatt.
        MAW = "MAW",
        /// K3, kilovolt-ampere reactive hour.
        K3 = "K3",
        /// H87, pieces (subscriptions and fees).
        PIECES = "H87",
        /// AMP, ampere.
        AMPERE = "AMP",
    }
}

code_list! {
    /// `asset_MktPSRType.psrType`: the technology of a production metering point.
    AssetType, "AssetTypeList",
    [
        "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13",
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B13",
        "B14", "B15", "B16", "B17", "B18", "B19", "B20", "B21", "B22", "B23", "B24", "B25", "B26",
        "B27", "B28", "B29", "B30", "B31", "B32", "B33", "B34", "B35", "B36", "B37", "B38", "B39",
        "B40", "B41", "B42", "B43", "B44", "B45", "B46", "B47", "B48", "B49", "B50", "B51", "B52",
        "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10", "D11", "D12", "D13",
        "D14", "D15", "D16", "D17", "D18", "D19", "D20", "D98", "D99", "Z03"
    ],
    {
    }
}

code_list! {
    /// `meteringMethod`: D01 physical, D02 virtual, D03 calculated.
    MeteringMethod, "MeteringMethodTypeList",
    [
        "D01", "D02", "D03", "E13", "E14", "E16", "E21", "E24"
    ],
    {
        /// D01, physical.
        PHYSICAL = "D01",
        /// D02, virtual.
        VIRTUAL = "D02",
        /// D03, calculated.
        CALCULATED = "D03",
    }
}

code_list! {
    /// `connectionState`: E22 connected, E23 disconnected, D03 new, D02 closed down.
    PhysicalStatus, "PhysicalStatusTypeList",
    [
        "D01", "D02", "D03", "E22", "E23", "E30", "E31"
    ],
    {
        /// E22, connected.
        CONNECTED = "E22",
        /// E23, disconnected.
        DISCONNECTED = "E23",
        /// D03, new.
        NEW = "D03",
        /// D02, closed down.
        CLOSED_DOWN = "D02",
    }
}

code_list! {
    /// `mPConnectionType`: D01 direct, D02 installation.
    MpConnectionType, "MPConnectionTypeList",
    [
        "D01", "D02"
    ],
    {
    }
}

code_list! {
    /// `disconnectionMethod`: D01 remote, D02 manual.
    DisconnectionMethod, "DisconnectionMethodTypeList",
    [
        "D01", "D02", "E36", "E37", "E38", "E39"
    ],
    {
    }
}
